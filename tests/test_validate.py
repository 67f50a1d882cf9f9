"""The validator: one clear error line at the right place for each mistake a person makes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import without_codes

BASE = """\
version: 1
name: base
model: openai/gpt-oss-120b
temperature: 0.5
max_completion_tokens: 100
vars:
  topic: git
messages:
  - role: system
    content: You are helpful.
  - role: user
    content: Tell me about {{ topic }}.
"""

RF = "response_format:\n  type: json_schema\n  json_schema:\n    name: x\n"
TOOL_F = "tools:\n  - type: function\n    function: {name: f}\n"

# name: (text to replace in BASE, replacement, the one expected error line, its code)
MISTAKES = {
    "typo in a key": (
        "temperature: 0.5",
        "temprature: 0.5",
        "spec.yaml:4:1: unknown key 'temprature' "
        "(did you mean 'temperature'? write: temperature: 0.5)",
        "unknown-key",
    ),
    "word for a number": (
        "temperature: 0.5",
        "temperature: hot",
        "spec.yaml:4:14: 'temperature' must be a number, not text ('hot')",
        "wrong-type",
    ),
    "quoted number": (
        "temperature: 0.5",
        "temperature: '0.5'",
        "spec.yaml:4:14: 'temperature' must be a number, not text ('0.5'): numbers are "
        "written without quotes (write: temperature: 0.5)",
        "wrong-form",
    ),
    "number out of range": (
        "temperature: 0.5",
        "temperature: 3",
        "spec.yaml:4:14: 'temperature' must be at most 2 (got 3)",
        "out-of-range",
    ),
    "empty value": (
        "temperature: 0.5",
        "temperature:",
        "spec.yaml:4:13: 'temperature' must be a number, not empty "
        "(the value is empty; write one after the ':')",
        "wrong-type",
    ),
    "missing model": (
        "model: openai/gpt-oss-120b\n",
        "",
        "spec.yaml:1:1: the spec is missing the required key 'model' "
        "(for example: model: openai/gpt-oss-120b)",
        "missing-key",
    ),
    "missing version": (
        "version: 1\n",
        "",
        "spec.yaml:1:1: the spec is missing the required key 'version' (add 'version:')",
        "missing-key",
    ),
    "wrong version": (
        "version: 1",
        "version: 2",
        "spec.yaml:1:10: 'version' must be 1 (got 2)",
        "schema-rule",
    ),
    "unknown role": (
        "role: user",
        "role: bot",
        "spec.yaml:11:11: 'messages[1].role' must be one of: system, developer, user, "
        "assistant, tool (got 'bot')",
        "unknown-value",
    ),
    "misspelt role": (
        "role: user",
        "role: usr",
        "spec.yaml:11:11: 'messages[1].role' must be one of: system, developer, user, "
        "assistant, tool (got 'usr') (did you mean 'user'? write: role: user)",
        "unknown-value",
    ),
    "no messages": (
        BASE[BASE.index("messages:") :],
        "messages: []\n",
        "spec.yaml:8:11: 'messages' needs at least one item",
        "wrong-size",
    ),
    "messages not a list": (
        BASE[BASE.index("messages:") :],
        "messages:\n  role: user\n  content: hi\n",
        "spec.yaml:9:3: 'messages' must be a list, not a mapping: a list is written in [ ] "
        "(or one '- ' line per item) (write: messages: [{role: user, content: hi}])",
        "wrong-form",
    ),
    "message without content": (
        "    content: Tell me about {{ topic }}.\n",
        "",
        "spec.yaml:11:5: 'messages[1]' is missing the required key 'content' (add 'content:')",
        "missing-key",
    ),
    "misspelt message key": (
        "    content: You are helpful.",
        "    content: You are helpful.\n    contnet: x",
        "spec.yaml:11:5: unknown key 'contnet' in 'messages[0]' (did you mean 'content'?)",
        "unknown-key",
    ),
    "variable with no value": (
        "{{ topic }}",
        "{{ topik }}",
        "spec.yaml:12:14: template uses the variable 'topik', which has no value "
        "(did you mean 'topic', a variable the spec has? write {{ topic }})",
        "undefined-variable",
    ),
    "variable with no value and no likely meaning": (
        "{{ topic }}",
        "{{ subject }}",
        "spec.yaml:12:14: template uses the variable 'subject', which has no value (add it "
        "under 'vars:' (e.g. vars: {subject: ...}) or pass --var subject=... when running)",
        "undefined-variable",
    ),
    "unclosed braces": (
        "{{ topic }}",
        "{{ topic }",
        "spec.yaml:12:14: template syntax error: unexpected '}' "
        "(check that every '{{' has a matching '}}' and every '{%' a matching '%}')",
        "template-syntax",
    ),
    "unclosed if": (
        "{{ topic }}",
        "{% if topic %}{{ topic }}",
        "spec.yaml:12:14: template syntax error: Unexpected end of template. Jinja was looking "
        "for the following tags: 'elif' or 'else' or 'endif'. The innermost block that needs to "
        "be closed is 'if'.",
        "template-syntax",
    ),
    "negative token limit": (
        "max_completion_tokens: 100",
        "max_completion_tokens: -5",
        "spec.yaml:5:24: 'max_completion_tokens' must be at least 1 (got -5)",
        "out-of-range",
    ),
    "fractional token limit": (
        "max_completion_tokens: 100",
        "max_completion_tokens: 10.5",
        "spec.yaml:5:24: 'max_completion_tokens' must be a whole number, not a number (10.5)",
        "wrong-type",
    ),
    "too many stop sequences": (
        "temperature: 0.5",
        "stop: [a, b, c, d, e]",
        "spec.yaml:4:7: 'stop' must have at most 4 items (it has 5)",
        "wrong-size",
    ),
    "json_schema without schema": (
        "temperature: 0.5",
        "response_format:\n  type: json_schema",
        "spec.yaml:4:1: 'response_format' is missing the required key 'json_schema' "
        "(add 'json_schema:')",
        "missing-key",
    ),
    "unknown response format": (
        "temperature: 0.5",
        "response_format:\n  type: json",
        "spec.yaml:5:9: 'response_format.type' must be one of: text, json_object, json_schema "
        "(got 'json')",
        "unknown-value",
    ),
    "missing schema file": (
        "temperature: 0.5",
        RF + "    schema:\n      $ref: schemas/absent.json",
        "spec.yaml:9:13: $ref file not found: schemas/absent.json (looked for "
        "schemas/absent.json, as the path is relative to the folder of the spec file: copy the "
        "file there, or correct the path)",
        "ref-not-found",
    ),
    "misspelt schema file": (
        "temperature: 0.5",
        RF + "    schema:\n      $ref: schemas/opn.json",
        "spec.yaml:9:13: $ref file not found: schemas/opn.json (looked for schemas/opn.json; "
        "did you mean 'schemas/open.json'?)",
        "ref-not-found",
    ),
    "schema file outside the project": (
        "temperature: 0.5",
        RF + "    schema:\n      $ref: ../outside.json",
        "spec.yaml:9:13: $ref '../outside.json' points outside the project folder {root} "
        "(keep schema files inside the project, e.g. under schemas/)",
        "data-file-outside",
    ),
    "schema file not JSON": (
        "temperature: 0.5",
        RF + "    schema:\n      $ref: schemas/bad.json",
        "schemas/bad.json:1:2: not valid JSON: Expecting property name enclosed in double "
        "quotes (JSON needs double quotes around names and text, and no comma after the last "
        "item)",
        "schema-rule",
    ),
    "inline schema with a bad type": (
        "temperature: 0.5",
        RF + "    schema:\n      type: strin",
        "spec.yaml:9:13: not a valid JSON Schema: 'type' must be one of string, number, "
        "integer, boolean, object, array, null (got 'strin') (did you mean 'string'?)",
        "invalid-json-schema",
    ),
    "strict schema with an optional property": (
        "temperature: 0.5",
        RF + "    strict: true\n    schema:\n      $ref: schemas/open.json",
        "schemas/open.json:1:1: response schema breaks strict mode: every property must be "
        "listed in 'required' (missing: b); make a property optional with type [..., 'null'] "
        "(fix the schema, or set strict: false)",
        "strict-mode",
    ),
    "two tools with one name": (
        "temperature: 0.5",
        TOOL_F + "  - type: function\n    function: {name: f}",
        "spec.yaml:8:22: two tools are named 'f' (give each tool its own name)",
        "duplicate-tool",
    ),
    "tool_choice names no tool": (
        "temperature: 0.5",
        TOOL_F + "tool_choice:\n  type: function\n  function: {name: g}",
        "spec.yaml:9:20: tool_choice names the tool 'g', which is not defined (defined tools: f)",
        "tool-choice",
    ),
    "tool_choice without tools": (
        "temperature: 0.5",
        "tool_choice: auto",
        "spec.yaml:4:1: tool_choice is set but the spec defines no tools "
        "(add 'tools:' or remove 'tool_choice')",
        "tool-choice",
    ),
    "tool name with a space": (
        "temperature: 0.5",
        "tools:\n  - type: function\n    function: {name: get weather}",
        "spec.yaml:6:22: 'tools[0].function.name' must be 1 to 64 letters, digits, '_' or '-' "
        "(no spaces)",
        "wrong-pattern",
    ),
    "JSON mode without asking for JSON": (
        "temperature: 0.5",
        "response_format: {type: json_object}",
        "spec.yaml:4:25: JSON mode needs the word 'JSON' in the messages, or the provider "
        "rejects the request (ask for JSON in the system or user message)",
        "json-mode-without-json",
    ),
    "both token limits": (
        "temperature: 0.5",
        "max_tokens: 10",
        "spec.yaml:4:1: both max_tokens and max_completion_tokens are set "
        "(keep only max_completion_tokens (max_tokens is its old name))",
        "token-limits",
    ),
    "streaming": (
        "temperature: 0.5",
        "stream: maybe",
        "spec.yaml:4:9: 'stream' must be true or false, not text ('maybe')",
        "wrong-type",
    ),
    "prompt instead of messages": (
        "temperature: 0.5",
        "prompt: hello",
        "spec.yaml:4:1: unknown key 'prompt' "
        "(put the text in a message: messages: [{role: user, content: ...}])",
        "unknown-key",
    ),
    "misspelt provider": (
        "temperature: 0.5",
        "provider: grok",
        "spec.yaml:4:11: 'provider' must be one of: groq, openai, offline (got 'grok') "
        "(did you mean 'groq'? write: provider: groq)",
        "unknown-value",
    ),
    "API key instead of its variable": (
        "temperature: 0.5",
        "provider:\n  base_url: http://localhost:1/v1\n  api_key_env: sk-abc123",
        "spec.yaml:6:16: 'provider.api_key_env' must be the NAME of an environment variable "
        "(letters, digits, '_'), never the key itself",
        "wrong-pattern",
    ),
    "seed as a word": (
        "temperature: 0.5",
        "seed: abc",
        "spec.yaml:4:7: 'seed' must be a whole number, not text ('abc')",
        "wrong-type",
    ),
    "empty model": (
        "model: openai/gpt-oss-120b",
        "model: ''",
        "spec.yaml:3:8: 'model' must not be empty",
        "wrong-size",
    ),
    "name with a space": (
        "name: base",
        "name: my spec",
        "spec.yaml:2:7: 'name' must start with a letter or digit and use only letters, digits, "
        "'.', '_' and '-' (no spaces)",
        "wrong-pattern",
    ),
    "tool message without its call id": (
        "  - role: system\n    content: You are helpful.\n",
        "  - role: tool\n    content: result\n",
        "spec.yaml:9:5: 'messages[0]' is missing the required key 'tool_call_id' "
        "(add 'tool_call_id:')",
        "missing-key",
    ),
    "several answers": (
        "temperature: 0.5",
        "n: 2",
        "spec.yaml:4:4: 'n' must be 1: Groq returns one answer per request "
        "(use cases to send more)",
        "schema-rule",
    ),
    "vars as a list": (
        "vars:\n  topic: git",
        "vars:\n  - topic: git",
        "spec.yaml:7:3: 'vars' must be a mapping of keys to values, not a list",
        "wrong-type",
    ),
    "unknown reasoning effort": (
        "temperature: 0.5",
        "reasoning_effort: max",
        "spec.yaml:4:19: 'reasoning_effort' must be one of: none, default, low, medium, high "
        "(got 'max')",
        "unknown-value",
    ),
    "tab indentation": (
        "  topic: git",
        "\ttopic: git",
        "spec.yaml:7:1: YAML syntax error: a tab is used for indentation "
        "(YAML does not allow tabs for indentation; use spaces)",
        "yaml-syntax",
    ),
    "duplicate key": (
        "temperature: 0.5",
        "temperature: 0.5\ntemperature: 0.7",
        "spec.yaml:5:1: key 'temperature' appears twice in the same mapping (delete one of them)",
        "duplicate-key",
    ),
}


def write_schemas(project: Path) -> None:
    schemas = project / "schemas"
    schemas.mkdir()
    (schemas / "bad.json").write_text("{nope")
    (schemas / "open.json").write_text(
        json.dumps(
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["a"],
                "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
            }
        )
    )


def test_base_spec_is_valid(project, run_cli):
    (project / "spec.yaml").write_text(BASE)
    result = run_cli("validate", "spec.yaml")
    assert result.exit_code == 0, result.output
    assert result.stderr == "1 spec valid\n"


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_each_mistake_gives_one_clear_line(project, run_cli, mistake):
    old, new, expected, code = MISTAKES[mistake]
    assert old in BASE
    write_schemas(project)
    (project.parent / "outside.json").write_text("{}")  # exists, but outside the project
    (project / "spec.yaml").write_text(BASE.replace(old, new, 1))
    result = run_cli("validate", "-q", "spec.yaml")
    assert result.exit_code == 1
    expected = expected.replace("{root}", str(project.resolve()))
    assert result.stdout.splitlines() == [f"{expected} [{code}]"]


def test_all_problems_of_all_files_in_one_pass(project, run_cli):
    (project / "a.yaml").write_text(BASE.replace("temperature: 0.5", "temprature: 0.5"))
    (project / "b.yaml").write_text(
        BASE.replace("name: base", "name: b")
        .replace("{{ topic }}", "{{ topik }}")
        .replace("model: openai/gpt-oss-120b", "model: openai/gpt-oss-20b\ntop_p: 7")
    )
    (project / "c.yaml").write_text(BASE.replace("name: base", "name: c"))
    result = run_cli("validate", ".")
    assert result.exit_code == 1
    lines = without_codes(result.stdout).splitlines()
    assert lines[0] == (
        "a.yaml:4:1: unknown key 'temprature' (did you mean 'temperature'? write: temperature: 0.5)"
    )
    assert lines[1] == "b.yaml:4:8: 'top_p' must be at most 1 (got 7)"
    assert len(lines) == 2  # the variable is checked once the schema passes
    assert result.stderr == "2 problems in 2 of 3 files\n"


def test_the_count_names_the_base_files_with_problems_apart(project, run_cli):
    (project / "base.yaml").write_text(
        "version: 1\nmodel: openai/gpt-oss-20b\n"
        "temprature: 0.2\nmessages: [{role: user, content: hi}]\n"
    )
    (project / "child.yaml").write_text("version: 1\nextends: base.yaml\nmax_tokns: 20\n")
    result = run_cli("validate", "child.yaml")
    assert result.exit_code == 1
    assert result.stderr == ("2 problems in 2 files (of 1 spec checked and the files they use)\n")


def test_every_unknown_key_of_one_mapping_is_reported(project, run_cli):
    spec = BASE.replace("temperature:", "temprature:").replace("messages:", "mesages:")
    (project / "spec.yaml").write_text(spec)
    result = run_cli("validate", "-q", "spec.yaml")
    assert result.exit_code == 1
    assert (
        "spec.yaml:4:1: unknown key 'temprature' (did you mean 'temperature'? write: "
        "temperature: 0.5)" in without_codes(result.stdout).splitlines()
    )
    assert "spec.yaml:8:1: unknown key 'mesages' (did you mean 'messages'? write: messages:)" in (
        without_codes(result.stdout).splitlines()
    )


def test_semantic_problems_are_all_reported(project, run_cli):
    spec = BASE.replace("{{ topic }}", "{{ a }} {{ b }}").replace(
        "temperature: 0.5", TOOL_F + "  - type: function\n    function: {name: f}\nmax_tokens: 5"
    )
    (project / "spec.yaml").write_text(spec)
    result = run_cli("validate", "-q", "spec.yaml")
    assert [line.split(": ", 1)[1] for line in without_codes(result.stdout).splitlines()] == [
        "two tools are named 'f' (give each tool its own name)",
        "both max_tokens and max_completion_tokens are set (keep only max_completion_tokens "
        "(max_tokens is its old name))",
        "template uses the variable 'a', which has no value (add it under 'vars:' "
        "(e.g. vars: {a: ...}) or pass --var a=... when running)",
        "template uses the variable 'b', which has no value (add it under 'vars:' "
        "(e.g. vars: {b: ...}) or pass --var b=... when running)",
    ]


def test_block_scalar_template_error_points_at_its_line(project, run_cli):
    spec = BASE.replace(
        "content: Tell me about {{ topic }}.", "content: |\n      Line one.\n      Line {{ two }."
    )
    (project / "spec.yaml").write_text(spec)
    result = run_cli("validate", "-q", "spec.yaml")
    assert result.stdout.startswith("spec.yaml:14:1: template syntax error: unexpected '}'")


def test_two_specs_with_one_name(project, run_cli):
    (project / "a.yaml").write_text(BASE)
    (project / "b.yaml").write_text(BASE)
    result = run_cli("validate", "-q", ".")
    assert without_codes(result.stdout) == (
        "b.yaml:1:1: spec name 'base' is also used by a.yaml "
        "(give each spec its own 'name:'; outputs are filed under it)\n"
    )


def test_folder_skips_data_templates_and_underscored(project, run_cli):
    for folder in ("data", "templates", "schemas", "runs", ".hidden"):
        (project / folder).mkdir(exist_ok=True)
        (project / folder / "x.yaml").write_text("not: a spec")
    (project / "_partial.yaml").write_text("not: a spec")
    (project / "real.yaml").write_text(BASE)
    assert run_cli("validate", ".").exit_code == 0


def test_empty_and_non_mapping_files(project, run_cli):
    (project / "empty.yaml").write_text("# nothing\n")
    (project / "list.yaml").write_text("- a\n- b\n")
    result = run_cli("validate", "-q", ".")
    assert without_codes(result.stdout).splitlines() == [
        "empty.yaml:1:1: this spec is empty "
        "(a spec starts with 'version: 1' and has 'model:' and 'messages:')",
        "list.yaml:1:1: this spec is not a mapping of keys to values "
        "(a spec starts with 'version: 1' and has 'model:' and 'messages:')",
    ]


def test_no_spec_files_is_a_usage_error(project, run_cli):
    (project / "empty").mkdir()
    result = run_cli("validate", "empty")
    assert result.exit_code == 2
    assert "no spec files" in result.stderr


def test_missing_path_is_a_usage_error(project, run_cli):
    assert run_cli("validate", "nope.yaml").exit_code == 2


def test_refs_inside_schema_files_are_inlined(project, run_cli):
    schemas = project / "schemas"
    schemas.mkdir()
    (schemas / "address.json").write_text(
        json.dumps(
            {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
                "additionalProperties": False,
            }
        )
    )
    (schemas / "person.json").write_text(
        json.dumps(
            {
                "type": "object",
                "properties": {"home": {"$ref": "address.json"}},
                "required": ["home"],
                "additionalProperties": False,
            }
        )
    )
    spec = BASE.replace(
        "temperature: 0.5", RF + "    strict: true\n    schema:\n      $ref: schemas/person.json"
    )
    (project / "spec.yaml").write_text(spec)
    result = run_cli("render", "spec.yaml")
    assert result.exit_code == 0, result.output
    schema = json.loads(result.stdout)["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["home"]["properties"]["city"] == {"type": "string"}


def test_ref_cycle_is_reported(project, run_cli):
    schemas = project / "schemas"
    schemas.mkdir()
    (schemas / "a.json").write_text('{"$ref": "b.json"}')
    (schemas / "b.json").write_text('{"$ref": "a.json"}')
    (project / "spec.yaml").write_text(
        BASE.replace("temperature: 0.5", RF + "    schema:\n      $ref: schemas/a.json")
    )
    result = run_cli("validate", "-q", "spec.yaml")
    assert without_codes(result.stdout) == (
        "spec.yaml:9:13: $ref 'a.json' refers back to itself through other files\n"
    )


def test_examples_in_specs_folder_are_valid(run_cli):
    root = Path(__file__).parent.parent
    result = run_cli("validate", str(root / "specs"))
    assert result.exit_code == 0, result.output


def test_a_warning_is_shown_and_leaves_the_spec_valid(tmp_path, monkeypatch):
    """Warnings (severity "warning") print with the word warning, count apart from problems,
    keep the exit code 0, and reach Python callers as RunnerWarning."""
    import warnings

    from click.testing import CliRunner

    from runner.check import validate as validate_module
    from runner.cli.main import cli
    from runner.errors import Problem, RunnerWarning

    def warn_once(file, spec):
        return [Problem(file.display, "this model retires soon", 3, 8, "use another", "warning")]

    monkeypatch.setattr(validate_module, "CHECKS", [*validate_module.CHECKS, warn_once])
    (tmp_path / ".git").mkdir()
    spec = tmp_path / "hello.yaml"
    spec.write_text(
        "version: 1\nname: hello\nprovider: offline\nmodel: openai/gpt-oss-20b\n"
        "messages:\n  - role: user\n    content: hi\n"
    )
    result = CliRunner().invoke(cli, ["validate", str(spec)])
    assert result.exit_code == 0, result.output
    assert "hello.yaml:3:8: warning: this model retires soon (use another)" in result.output
    assert "1 spec valid, 1 warning" in result.output

    json_out = CliRunner().invoke(cli, ["validate", "--format", "json", str(spec)]).output
    assert '"valid": true' in json_out and '"severity": "warning"' in json_out
    github = CliRunner().invoke(cli, ["validate", "--format", "github", str(spec)]).output
    assert github.startswith("::warning file=")

    import runner

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        specs = runner.load_specs(spec)
    assert [s.name for s in specs] == ["hello"]
    assert [w.category for w in caught] == [RunnerWarning]
    assert caught[0].message.problem.severity == "warning"  # type: ignore[union-attr]
