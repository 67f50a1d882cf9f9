"""Every kind of mistake explained with its fix (issue 23), and ``runner validate --fix``.

Each kind has a test of its message (the corrected line with the user's own values) and, where
the fix is one unambiguous correction, of what ``--fix`` writes. The held-out mistakes in
tests/data/heldout/ are NOT used here (tests/test_heldout.py only reports their score).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

HEAD = "version: 1\nmodel: openai/gpt-oss-120b\n"
USER = "messages:\n  - role: user\n    content: Hi there, answer in JSON.\n"


def validate(run_cli, *args: str) -> list[dict]:
    result = run_cli("validate", "--format", "json", *args)
    return json.loads(result.stdout)["problems"]


def only(problems: list[dict]) -> dict:
    assert len(problems) == 1, problems
    return problems[0]


# ---- kinds: (spec text, line, code, text in the message, text in the fix, fixed data or None)
KINDS = {
    "key typo": (
        HEAD + "temprature: 0.3\n" + USER,
        3,
        "unknown-key",
        "unknown key 'temprature'",
        "did you mean 'temperature'? write: temperature: 0.3",
        {"temperature": 0.3},
    ),
    "key in another case": (
        HEAD + "Temperature: 0.3\n" + USER,
        3,
        "unknown-key",
        "unknown key 'Temperature'",
        "write: temperature: 0.3",
        {"temperature": 0.3},
    ),
    "enum typo": (
        HEAD + "service_tier: flx\n" + USER,
        3,
        "unknown-value",
        "(got 'flx')",
        "did you mean 'flex'? write: service_tier: flex",
        {"service_tier": "flex"},
    ),
    "enum in another case": (
        HEAD + "messages:\n  - role: User\n    content: hi\n",
        4,
        "unknown-value",
        "(got 'User')",
        "write: role: user",
        {"messages": [{"role": "user", "content": "hi"}]},
    ),
    "strict beside json_schema": (
        HEAD
        + "response_format:\n  type: json_schema\n  strict: false\n  json_schema:\n"
        + "    name: city\n"
        + USER,
        5,
        "misplaced-key",
        "'strict' does not belong in 'response_format'; it belongs in "
        "'response_format.json_schema'",
        "move it there: json_schema: {name: city, strict: false}",
        {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "city", "strict": False},
            }
        },
    ),
    "base_url at the top": (
        "version: 1\nmodel: qwen3\nbase_url: http://127.0.0.1:8000/v1\n" + USER,
        3,
        "misplaced-key",
        "'base_url' does not belong at the top level; it belongs in 'provider'",
        "move it there: provider: {base_url: http://127.0.0.1:8000/v1}",
        {"provider": {"base_url": "http://127.0.0.1:8000/v1"}},
    ),
    "function fields on the tool": (
        HEAD + "tools:\n  - type: function\n    name: lookup\n" + USER,
        5,
        "misplaced-key",
        "'name' does not belong in 'tools[0]'; it belongs in 'tools[0].function'",
        "move it there: function: {name: lookup}",
        {"tools": [{"type": "function", "function": {"name": "lookup"}}]},
    ),
    "a message's text under 'text:'": (
        HEAD + "messages:\n  - role: user\n    text: hello\n",
        5,
        "unknown-key",
        "here it is called 'content'",
        "write: content: hello",
        {"messages": [{"role": "user", "content": "hello"}]},
    ),
    "response_format as a word": (
        HEAD + "response_format: json_object\n" + USER,
        3,
        "wrong-form",
        "'response_format' must be a mapping of keys to values, not text ('json_object')",
        "write: response_format: {type: json_object}",
        {"response_format": {"type": "json_object"}},
    ),
    "image_url as a URL": (
        HEAD + "messages:\n  - role: user\n    content:\n      - type: image_url\n"
        "        image_url: https://example.com/receipt.png\n",
        7,
        "wrong-form",
        "an image URL goes under 'url:'",
        "write: image_url: {url: https://example.com/receipt.png}",
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "image_url",
                            "image_url": {"url": "https://example.com/receipt.png"},
                        }
                    ],
                }
            ]
        },
    ),
    "decimal comma": (
        HEAD + "top_p: '0,9'\n" + USER,
        3,
        "wrong-form",
        "numbers are written with a decimal point",
        "write: top_p: 0.9",
        {"top_p": 0.9},
    ),
    "thousands separator": (
        HEAD + "max_completion_tokens: 2,048\n" + USER,
        3,
        "wrong-form",
        "numbers are written without separators",
        "write: max_completion_tokens: 2048",
        {"max_completion_tokens": 2048},
    ),
    "a list as one text": (
        HEAD + "expect:\n  - one_of: billing, sales\n" + USER,
        4,
        "wrong-form",
        "'expect[0].one_of' must be a list",
        "write: one_of: [billing, sales]",
        {"expect": [{"one_of": ["billing", "sales"]}]},
    ),
    "provider with a misspelt key": (
        HEAD + "provider:\n  nmae: lab\n  base_url: http://127.0.0.1:8000/v1\n" + USER,
        4,
        "unknown-key",
        "unknown key 'nmae' in 'provider'",
        "did you mean 'name'? write: name: lab",
        {"provider": {"name": "lab", "base_url": "http://127.0.0.1:8000/v1"}},
    ),
}


def read(path: Path):
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_is_explained_with_its_fix(project, run_cli, kind):
    text, line, code, message, fix, _ = KINDS[kind]
    (project / "spec.yaml").write_text(text)

    problem = only([p for p in validate(run_cli, "spec.yaml") if p["code"] == code])

    assert problem["line"] == line
    assert message in problem["message"]
    assert fix in problem["hint"]


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_is_fixed_in_place(project, run_cli, kind):
    text, _, _, _, _, fixed = KINDS[kind]
    (project / "spec.yaml").write_text(text)

    result = run_cli("validate", "--fix", "spec.yaml")

    data = read(project / "spec.yaml")
    for key, value in fixed.items():
        assert data[key] == value
    assert result.stdout.startswith("--- a/spec.yaml\n+++ b/spec.yaml\n")


def test_diff_shows_the_fix_and_changes_nothing(project, run_cli):
    text = HEAD + "temprature: 0.3   # warm enough\n" + USER
    (project / "spec.yaml").write_text(text)

    result = run_cli("validate", "--diff", "spec.yaml")

    assert result.exit_code == 1
    # the comment stays where it was, in its column
    assert "-temprature: 0.3   # warm enough\n+temperature: 0.3  # warm enough\n" in (result.stdout)
    assert (project / "spec.yaml").read_text() == text
    assert "1 problem fixable in 1 file" in result.stderr


def test_fix_keeps_comments_order_quotes_and_blank_lines(project, run_cli):
    text = (
        "# The triage spec. Keep this comment.\n"
        "version: 1\n"
        "model: 'openai/gpt-oss-120b'   # quoted on purpose\n"
        "\n"
        "temprature: 0.3\n"
        "\n"
        "# the conversation\n"
        "messages:\n"
        "  - role: user\n"
        '    content: "Route: {{ ticket }}"\n'
        "vars: {ticket: refund please}\n"
    )
    (project / "spec.yaml").write_text(text)

    result = run_cli("validate", "--fix", "spec.yaml")

    assert result.exit_code == 0, result.output
    assert (project / "spec.yaml").read_text() == text.replace("temprature", "temperature")


def test_a_guess_that_is_not_a_slip_is_reported_but_not_applied(project, run_cli):
    text = HEAD + "tempratur: 0.3\n" + USER  # two letters away: a guess, not a slip
    (project / "spec.yaml").write_text(text)

    result = run_cli("validate", "--fix", "spec.yaml")

    assert result.exit_code == 1
    assert "did you mean 'temperature'?" in result.stdout
    assert (project / "spec.yaml").read_text() == text


def test_lines_ruamel_would_rewrite_keep_the_users_text(project, run_cli):
    text = HEAD + "stop: [a,b]\nseed:     7\ntemprature: 0.3\n" + USER + "...\n"
    (project / "spec.yaml").write_text(text)

    result = run_cli("validate", "--fix", "spec.yaml")

    assert result.exit_code == 0, result.output
    assert (project / "spec.yaml").read_text() == text.replace("temprature", "temperature")


def test_a_fix_on_a_line_ruamel_would_rewrite_leaves_the_file_alone(project, run_cli):
    text = HEAD + "temprature:    0.3\n" + USER  # ruamel.yaml writes one space after ':'
    (project / "spec.yaml").write_text(text)

    result = run_cli("validate", "--fix", "spec.yaml")

    assert result.exit_code == 1
    assert (project / "spec.yaml").read_text() == text
    assert "spec.yaml: not fixed: a fix touches a line ruamel.yaml would rewrite" in result.stderr


def test_fix_and_json_output_do_not_mix(project, run_cli):
    (project / "spec.yaml").write_text(HEAD + USER)

    result = run_cli("validate", "--fix", "--format", "json", "spec.yaml")

    assert result.exit_code == 2
    assert "use them with --format text" in result.stderr


# ---- the providers' own request rules


RULES = {
    "raw reasoning with JSON mode": (
        HEAD + "reasoning_format: raw\nresponse_format: {type: json_object}\n" + USER,
        3,
        "reasoning-format",
        "reasoning_format: raw cannot be used with JSON mode or structured output",
        "write: reasoning_format: parsed",
    ),
    "include_reasoning with reasoning_format": (
        HEAD + "reasoning_format: hidden\ninclude_reasoning: false\n" + USER,
        4,
        "reasoning-format",
        "include_reasoning and reasoning_format cannot be used together",
        "keep one",
    ),
    "tool parameters that are not an object": (
        HEAD + "tools:\n  - type: function\n    function:\n      name: shout\n"
        "      parameters:\n        type: string\n" + USER,
        8,
        "tool-parameters-not-object",
        "the parameters of tool 'shout' are a schema of type string",
        "parameters: {type: object, properties: {value: {type: string}}, required: [value]}",
    ),
    "tool parameters without their type": (
        HEAD + "tools:\n  - type: function\n    function:\n      name: shout\n"
        "      parameters:\n        properties: {text: {type: string}}\n" + USER,
        8,
        "tool-parameters-not-object",
        "have 'properties' but no 'type: object'",
        "add the line: type: object",
    ),
    "an image in a system message": (
        HEAD + "messages:\n  - role: system\n    content:\n      - type: image_url\n"
        "        image_url: {url: 'https://example.com/a.png'}\n"
        "  - {role: user, content: hi}\n",
        6,
        "image-not-in-user-message",
        "an image can only be sent in a user message",
        "role: user",
    ),
    "a tool message answering no call": (
        HEAD + "messages:\n  - {role: user, content: hi}\n"
        "  - {role: tool, tool_call_id: call_9, content: '42'}\n",
        5,
        "tool-message-without-call",
        "answers the call 'call_9', but no assistant message before it made that call",
        "tool_calls: [{id: call_9, type: function",
    ),
    "a tool call nobody answers": (
        HEAD + "messages:\n  - {role: user, content: hi}\n"
        "  - role: assistant\n    tool_calls:\n"
        "      - {id: call_1, type: function, function: {name: f, arguments: '{}'}}\n"
        "  - {role: user, content: and?}\n",
        5,
        "tool-call-without-answer",
        "the assistant's tool call 'call_1' has no tool message answering it",
        "add after it: - {role: tool, tool_call_id: call_1, content: ...}",
    ),
}


@pytest.mark.parametrize("rule", RULES)
def test_the_providers_rules_are_known_before_sending(project, run_cli, rule):
    text, line, code, message, fix = RULES[rule]
    (project / "spec.yaml").write_text(text)

    problem = only([p for p in validate(run_cli, "spec.yaml") if p["code"] == code])

    assert problem["line"] == line
    assert message in problem["message"]
    assert fix in problem["hint"]


def test_a_tool_call_answered_in_order_is_fine(project, run_cli):
    (project / "spec.yaml").write_text(
        HEAD + "messages:\n  - {role: user, content: hi}\n"
        "  - role: assistant\n    tool_calls:\n"
        "      - {id: call_1, type: function, function: {name: f, arguments: '{}'}}\n"
        "  - {role: tool, tool_call_id: call_1, content: '42'}\n"
    )

    assert run_cli("validate", "spec.yaml").exit_code == 0


def test_the_missing_type_of_tool_parameters_is_fixed(project, run_cli):
    text, *_ = RULES["tool parameters without their type"]
    (project / "spec.yaml").write_text(text)

    run_cli("validate", "--fix", "spec.yaml")

    parameters = read(project / "spec.yaml")["tools"][0]["function"]["parameters"]
    assert parameters == {"properties": {"text": {"type": "string"}}, "type": "object"}


# ---- the example specs, one fixable mistake of each kind, fixed with every comment kept

EXAMPLES = Path(__file__).resolve().parent.parent / "specs"

# (file, text in it, the mistake written instead)
BREAKAGES = [
    ("haiku.yaml", "temperature: 0.7", "temprature: 0.7"),
    ("haiku.yaml", "max_completion_tokens: 400", "max_completion_tokens: '400'"),
    (
        "extract-contact.yaml",
        "response_format:\n  type: json_object",
        "response_format: json_object",
    ),
    ("review-sentiment.yaml", "    strict: true\n", ""),
    ("review-sentiment.yaml", "  type: json_schema\n", "  type: json_schema\n  strict: true\n"),
    ("weather-tools.yaml", "tool_choice: auto", "tool_choice: Auto"),
    ("triage-matrix.yaml", "  - role: system", "  - role: System"),
    ("receipt-total.yaml", "temperature: 0", "temperature: '0,0'"),
    ("_support-base.yaml", "  - role: system\n    content:", "  - role: system\n    text:"),
    ("ticket-triage.yaml", "reasoning_effort: low", "reasoning_effort: lwo"),
]


def test_fix_repairs_the_example_specs_and_keeps_every_comment(tmp_path, monkeypatch, run_cli):
    for folder in ("specs", "schemas", "templates"):
        shutil.copytree(EXAMPLES.parent / folder, tmp_path / folder)
    (tmp_path / "runner.yaml").write_text("version: 1\n")
    monkeypatch.chdir(tmp_path)
    specs = tmp_path / "specs"
    originals = {p.name: p.read_text() for p in specs.glob("*.yaml")}
    for name, good, bad in BREAKAGES:
        text = (specs / name).read_text()
        assert good in text, (name, good)
        (specs / name).write_text(text.replace(good, bad, 1))
    assert run_cli("validate", "specs").exit_code == 1

    result = run_cli("validate", "--fix", "specs")

    assert result.exit_code == 0, result.output
    for path in specs.glob("*.yaml"):
        fixed = path.read_text()
        comments = [
            line.split("#", 1)[1] for line in originals[path.name].splitlines() if "#" in line
        ]
        for comment in comments:
            assert comment in fixed, (path.name, comment)


# ---- template names


def test_a_variable_in_another_case_is_named_and_fixed(project, run_cli):
    (project / "spec.yaml").write_text(
        HEAD + "vars: {ticket: refund}\nmessages:\n  - role: user\n"
        "    content: 'Route {{ Ticket }} now'   # the ticket text\n"
    )

    problem = only(validate(run_cli, "spec.yaml"))
    run_cli("validate", "--fix", "spec.yaml")

    assert (problem["line"], problem["code"]) == (6, "undefined-variable")
    assert "did you mean 'ticket', a variable the spec has? write {{ ticket }}" in problem["hint"]
    assert "content: 'Route {{ ticket }} now'   # the ticket text" in (
        (project / "spec.yaml").read_text()
    )


def test_a_variable_that_is_a_slip_of_a_column_is_named_at_the_template(project, run_cli):
    (project / "rows.csv").write_text("id,customer_name\nc1,Ada\nc2,Grace\n")
    (project / "spec.yaml").write_text(
        HEAD + "cases: rows.csv\nmessages:\n  - role: user\n"
        '    content: "Greet {{ customer_nam }}"\n'
    )

    problem = only(validate(run_cli, "spec.yaml"))
    run_cli("validate", "--fix", "spec.yaml")

    assert (problem["file"], problem["line"]) == ("spec.yaml", 6)
    assert "did you mean 'customer_name', a column of the cases?" in problem["hint"]
    assert '"Greet {{ customer_name }}"' in (project / "spec.yaml").read_text()
    assert run_cli("validate", "spec.yaml").exit_code == 0


def test_a_variable_no_column_resembles_is_still_checked_row_by_row(project, run_cli):
    (project / "rows.csv").write_text("id,customer_name\nc1,Ada\n")
    (project / "spec.yaml").write_text(
        HEAD + "cases: rows.csv\nmessages:\n  - {role: user, content: '{{ product }}'}\n"
    )

    problem = only(validate(run_cli, "spec.yaml"))

    assert (problem["file"], problem["line"], problem["code"]) == (
        "rows.csv",
        2,
        "row-missing-variable",
    )


def test_a_name_with_a_minus_is_explained_as_a_subtraction(project, run_cli):
    (project / "spec.yaml").write_text(
        HEAD + "vars: {customer_name: Ada}\nmessages:\n  - role: user\n"
        "    content: 'Hello {{ customer-name }}!'\n"
    )

    problem = only(validate(run_cli, "spec.yaml"))
    run_cli("validate", "--fix", "spec.yaml")

    assert problem["code"] == "variable-with-minus"
    assert problem["message"] == (
        "template reads 'customer-name' as 'customer' minus 'name': a '-' in a name is a "
        "subtraction in Jinja"
    )
    assert problem["hint"] == "write {{ customer_name }}"
    assert "'Hello {{ customer_name }}!'" in (project / "spec.yaml").read_text()


def test_a_column_with_a_minus_is_to_be_renamed(project, run_cli):
    (project / "rows.csv").write_text("id,customer-name\nc1,Ada\n")
    (project / "spec.yaml").write_text(
        HEAD + "cases: rows.csv\nmessages:\n  - {role: user, content: 'Hi {{ customer-name }}'}\n"
    )

    problem = only(validate(run_cli, "spec.yaml"))

    assert problem["code"] == "variable-with-minus"
    assert problem["hint"] == (
        "rename the variable 'customer-name' to customer_name and write {{ customer_name }}"
    )
    assert run_cli("validate", "--fix", "spec.yaml").exit_code == 1  # nothing safe to do


def test_a_real_subtraction_is_left_alone(project, run_cli):
    (project / "spec.yaml").write_text(
        HEAD + "vars: {total: 5, paid: 2}\n"
        "messages:\n  - {role: user, content: 'Owed: {{ total - paid }}'}\n"
    )

    assert run_cli("validate", "spec.yaml").exit_code == 0


# ---- issue 27: warnings for --var, provider keys, number agreement

OFFLINE = "version: 1\nmodel: openai/gpt-oss-20b\nprovider: offline\nvars: {topic: git}\n"
TOPIC = "messages:\n  - {role: user, content: 'A haiku about {{ topic }}'}\n"


def runner_process(*args: str) -> subprocess.CompletedProcess[str]:
    """The real command (its entry point prints the library's warnings)."""
    command = [sys.executable, "-m", "runner", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_a_var_no_template_uses_is_warned_with_the_closest_name(project):
    (project / "spec.yaml").write_text(OFFLINE + TOPIC)

    rendered = runner_process("render", "spec.yaml", "--var", "topik=rust")
    ran = runner_process("run", "spec.yaml", "--var", "topik=rust", "-q")

    warning = (
        "--var: warning: no template uses the variable 'topik' given on the command line "
        "(did you mean 'topic'? pass --var topic=...)"
    )
    assert rendered.returncode == 0 and rendered.stderr.splitlines() == [warning]
    assert ran.returncode == 0 and ran.stderr.splitlines() == [warning]
    assert runner_process("render", "spec.yaml", "--var", "topic=rust").stderr == ""


def test_the_python_api_hands_the_warning_over(project):
    import warnings

    from runner import render_spec
    from runner.errors import RunnerWarning

    (project / "spec.yaml").write_text(OFFLINE + TOPIC)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        render_spec("spec.yaml", {"topik": "rust"})

    problems = [w.message.problem for w in caught if isinstance(w.message, RunnerWarning)]
    assert [(p.code, p.severity) for p in problems] == [("unused-variable", "warning")]


def test_a_project_silences_a_warning_in_runner_yaml(project):
    (project / "runner.yaml").write_text("version: 1\nsilence: [unused-variable]\n")
    (project / "spec.yaml").write_text(OFFLINE + TOPIC)

    result = runner_process("render", "spec.yaml", "--var", "topik=rust")

    assert result.returncode == 0 and result.stderr == ""


def test_silence_names_only_warnings(project, run_cli):
    (project / "runner.yaml").write_text("version: 1\nsilence: [unused-variabel, unknown-key]\n")
    (project / "spec.yaml").write_text(OFFLINE + TOPIC)

    result = run_cli("validate", "spec.yaml")

    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "runner.yaml:2:11: no warning has the code 'unused-variabel' (did you mean "
        "'unused-variable'?) [project-config]",
        "runner.yaml:2:28: 'unknown-key' is an error, and errors cannot be silenced (warnings "
        "that can be: deprecated-model, unknown-model, unused-variable) [project-config]",
    ]


def test_an_unknown_key_of_a_provider_mapping_is_named(project, run_cli):
    (project / "spec.yaml").write_text(
        HEAD + "provider: {nme: lab, base_url: 'http://127.0.0.1:9/v1'}\n" + USER
    )

    problem = only(validate(run_cli, "spec.yaml"))

    assert problem["message"] == "unknown key 'nme' in 'provider'"
    assert problem["hint"] == "did you mean 'name'? write: name: lab"


def test_a_row_with_one_value_says_value(project, run_cli):
    (project / "rows.csv").write_text("id,topic\nr1\n")
    (project / "spec.yaml").write_text(
        "version: 1\nmodel: openai/gpt-oss-20b\ncases: rows.csv\n" + TOPIC
    )

    problem = only(validate(run_cli, "spec.yaml"))

    assert problem["message"] == "row 2 has 1 value but the header has 2 columns"
