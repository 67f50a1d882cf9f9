"""A mistake inside a JSON Schema (response_format or tool parameters) is reported at the node
that is wrong, in whichever file holds it: the spec, or the schema file a $ref leads to."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import without_codes

from runner.spec.json_positions import json_positions

SPEC = """\
version: 1
model: openai/gpt-oss-20b
messages:
  - {{role: user, content: Answer in JSON.}}
{extra}
"""
RESPONSE_REF = """\
response_format:
  type: json_schema
  json_schema:
    name: answer
    strict: {strict}
    schema:
      $ref: {ref}
"""
CITY = """\
{
  "type": "object",
  "properties": {
    "city": {"type": "string"},
    "days": {"type": "integr", "minimum": 1}
  },
  "required": ["city", "days"],
  "additionalProperties": false
}
"""


def validate(project: Path, run_cli, extra: str) -> list[str]:
    (project / "spec.yaml").write_text(SPEC.format(extra=extra))
    result = run_cli("validate", "spec.yaml")
    assert result.exit_code == 1, result.output
    return without_codes(result.stdout).splitlines()


def schema_file(project: Path, name: str, text: str) -> None:
    (project / "schemas").mkdir(exist_ok=True)
    (project / "schemas" / name).write_text(text)


def test_a_type_typo_in_a_referenced_file_points_at_its_line(project, run_cli):
    schema_file(project, "city.json", CITY)

    lines = validate(project, run_cli, RESPONSE_REF.format(strict="true", ref="schemas/city.json"))

    assert lines == [
        "schemas/city.json:5:22: not a valid JSON Schema: 'type' must be one of string, "
        "number, integer, boolean, object, array, null (got 'integr') (did you mean 'integer'?)"
    ]


def test_a_chain_of_refs_ends_in_the_file_that_holds_the_mistake(project, run_cli):
    schema_file(
        project, "outer.json", '{"type": "object",\n "properties": {"x": {"$ref": "inner.json"}}}'
    )
    schema_file(project, "inner.json", '{\n  "type": "array",\n  "items": {"minItems": -1}\n}')

    lines = validate(
        project, run_cli, RESPONSE_REF.format(strict="false", ref="schemas/outer.json")
    )

    assert lines == [
        "schemas/inner.json:3:25: not a valid JSON Schema: -1 is less than the minimum of 0 "
        "(see https://json-schema.org/understanding-json-schema/)"
    ]


def test_a_pointer_into_a_file(project, run_cli):
    schema_file(
        project, "defs.json", '{"$defs": {\n  "ok": {"type": "string"},\n  "bad": {"enum": 3}\n}}'
    )

    lines = validate(
        project, run_cli, RESPONSE_REF.format(strict="false", ref="schemas/defs.json#/$defs/bad")
    )

    assert lines[0].startswith(
        "schemas/defs.json:3:19: not a valid JSON Schema: 3 is not of type 'array'"
    )


def test_an_inline_tool_parameter_typo_points_into_the_spec(project, run_cli):
    tools = (
        "tools:\n"
        "  - type: function\n"
        "    function:\n"
        "      name: get_weather\n"
        "      parameters:\n"
        "        type: object\n"
        "        properties:\n"
        "          city:\n"
        "            type: strng\n"
    )

    lines = validate(project, run_cli, tools)

    assert lines == [
        "spec.yaml:13:19: not a valid JSON Schema: 'type' must be one of string, number, "
        "integer, boolean, object, array, null (got 'strng') (did you mean 'string'?)"
    ]


def test_a_strict_mode_problem_points_at_the_object_that_breaks_it(project, run_cli):
    schema_file(
        project,
        "nested.json",
        json.dumps(
            {
                "type": "object",
                "properties": {
                    "inner": {"type": "object", "properties": {"a": {"type": "string"}}}
                },
                "required": ["inner"],
                "additionalProperties": False,
            },
            indent=2,
        ),
    )

    lines = validate(
        project, run_cli, RESPONSE_REF.format(strict="true", ref="schemas/nested.json")
    )

    assert lines == [
        "schemas/nested.json:4:14: response schema breaks strict mode: every object needs "
        "'additionalProperties: false' (fix the schema, or set strict: false)",
        "schemas/nested.json:4:14: response schema breaks strict mode: every property must be "
        "listed in 'required' (missing: a); make a property optional with type [..., 'null'] "
        "(fix the schema, or set strict: false)",
    ]


def test_json_positions_follow_escapes_unicode_and_nesting():
    text = '{"a\\"b": [1, {"c": "é\\u00e9"}, -2.5e3],\n\t"d": {"e": [true, null]}}'

    positions = json_positions(text)

    assert positions[()] == (1, 1)
    assert positions[('a"b',)] == (1, 10)
    assert positions[('a"b', 1, "c")] == (1, 20)
    assert positions[('a"b', 2)] == (1, 32)
    assert positions[("d", "e", 1)] == (2, 20)
    assert json_positions("{not json") == {}
