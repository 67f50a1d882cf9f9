"""The commonest mistakes get a message that names them and shows the line as it should be."""

from __future__ import annotations

import pytest
from helpers import without_codes

HEAD = "version: 1\nmodel: openai/gpt-oss-20b\nvars: {name: Ada}\nmessages:\n"

CASES = {
    "unquoted template (YAML reads a mapping)": (
        "  - role: user\n    content: {{ name }}\n",
        "spec.yaml:6:14: a template starting with '{{' must be quoted: YAML reads {{ ... }} as "
        'a mapping (write it as: content: "{{ name }}")',
    ),
    "unquoted template followed by text": (
        "  - role: user\n    content: {{ name }}, say hi\n",
        "spec.yaml:6:14: YAML syntax error: a template starting with '{{' must be quoted: YAML "
        'reads {{ ... }} as a mapping (write it as: content: "{{ name }}, say hi")',
    ),
    "unquoted block tag": (
        '  - role: user\n    content: {% if name %}Hi "{{ name }}"{% endif %}\n',
        "spec.yaml:6:14: YAML syntax error: a template starting with '{%' must be quoted: YAML "
        "reads {% ... %} as a mapping (write it as: content: "
        '"{% if name %}Hi \\"{{ name }}\\"{% endif %}")',
    ),
    "tool_choice given a tool's name": (
        "  - {role: user, content: Weather?}\n"
        "tools: [{type: function, function: {name: get_weather}}]\n"
        "tool_choice: get_weather\n",
        "spec.yaml:7:14: 'tool_choice' is none, auto, required, or an object naming one tool "
        "(got 'get_weather') (to make the model call get_weather, write: tool_choice: "
        "{type: function, function: {name: get_weather}})",
    ),
    "message key indented less than role": (
        "  - role: user\n  content: hi\n",
        "spec.yaml:6:3: YAML syntax error: 'content:' is indented less deep than 'role:' of the "
        "list item above it (line up the keys of one item after its '- ': '    content: hi')",
    ),
    "message key indented deeper than role": (
        "  - role: user\n      content: hi\n",
        "spec.yaml:6:7: YAML syntax error: 'content:' is indented deeper than 'role:' of the "
        "list item above it (line up the keys of one item after its '- ': '    content: hi')",
    ),
    "a message field at the top level": (
        "  - role: system\n    content: Be brief.\ncontent: hi\n",
        "spec.yaml:7:1: unknown key 'content' ('content' belongs to a message: indent it under "
        "its item in 'messages:', lined up with 'role:')",
    ),
    "one message split into two items": (
        "  - role: user\n  - content: hi\n",
        "spec.yaml:5:5: 'messages[0]' is missing the required key 'content' (its 'content:' has "
        "a '- ' of its own below; remove that '- ')\n"
        "spec.yaml:6:5: 'messages[1]' is missing the required key 'role' (each '- ' starts a "
        "new message; if this belongs to the message above, remove its '- ' and line it up "
        "with 'role:')",
    ),
    "a tab in the indentation": (
        "  - role: user\n\tcontent: hi\n",
        "spec.yaml:6:1: YAML syntax error: a tab is used for indentation (YAML does not allow "
        "tabs for indentation; use spaces)",
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_common_mistakes_are_named_with_the_fixed_line(project, run_cli, name):
    body, expected = CASES[name]
    (project / "spec.yaml").write_text(HEAD + body)

    result = run_cli("validate", "spec.yaml")

    assert result.exit_code == 1
    assert without_codes(result.stdout).rstrip("\n") == expected


def test_the_fixed_line_of_an_unquoted_template_is_valid(project, run_cli):
    (project / "spec.yaml").write_text(HEAD + '  - role: user\n    content: "{{ name }}"\n')

    assert run_cli("validate", "spec.yaml").exit_code == 0


def test_a_quoted_tool_choice_object_is_accepted(project, run_cli):
    (project / "spec.yaml").write_text(
        HEAD + "  - {role: user, content: Weather?}\n"
        "tools: [{type: function, function: {name: get_weather}}]\n"
        "tool_choice: {type: function, function: {name: get_weather}}\n"
    )

    assert run_cli("validate", "spec.yaml").exit_code == 0


# ---- did-you-mean (runner/spec/hints.py), used for keys, variables, columns, files, values


@pytest.mark.parametrize(
    ("word", "choices", "expected"),
    [
        ("temprature", ["temperature", "top_p", "tools"], ["temperature"]),
        ("Ticket", ["ticket", "tickets_sold"], ["ticket"]),  # case only
        ("customer-name", ["customer_name", "name"], ["customer_name"]),  # separators only
        ("meduim", ["low", "medium", "high"], ["medium"]),  # two letters swapped: one edit
        ("tickts.csv", ["tickets.csv", "triage-labelled.csv"], ["tickets.csv"]),
        ("nme", ["name", "base_url", "api_key_env"], ["name"]),
        ("prompt", ["top_p", "model", "messages"], []),  # nothing close: no guess
        ("lo", ["low", "lot"], ["lot", "low"]),  # a tie: both named, neither applied
    ],
)
def test_close_matches(word, choices, expected):
    from runner.spec.hints import close_matches

    assert sorted(close_matches(word, choices)) == sorted(expected)


def test_closest_is_the_one_guess_or_none():
    from runner.spec.hints import closest, did_you_mean

    assert closest("temprature", ["temperature", "top_p"]) == "temperature"
    assert closest("lo", ["low", "lot"]) is None
    assert did_you_mean("lo", ["low", "lot"]) == "did you mean 'lot' or 'low'?"
    assert did_you_mean("xyz", ["temperature"]) is None


def test_a_slip_is_case_separators_or_one_edit():
    from runner.spec.hints import is_slip

    assert is_slip("Ticket", "ticket")
    assert is_slip("customer-name", "customer_name")
    assert is_slip("temprature", "temperature")
    assert not is_slip("tmprture", "temperature")
