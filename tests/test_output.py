"""Checking model answers: JSON mode, structured outputs, tool-call arguments, truncation."""

import json
from pathlib import Path

import pytest

from runner.grade.output import MalformedResponse, check_response
from runner.spec.objects import OutputSchema, Spec, Tool

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


def make_spec(output=None, tools=()) -> Spec:
    return Spec(
        path=Path("s.yaml"),
        display="s.yaml",
        sha256="0",
        name="s",
        model="m",
        messages=(),
        params={},
        vars={},
        output=output,
        tools=tuple(tools),
    )


def completion(content=None, finish_reason="stop", tool_calls=None) -> dict:
    message = {"role": "assistant", "content": content}
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
    return {"choices": [{"index": 0, "message": message, "finish_reason": finish_reason}]}


def call(name, arguments) -> dict:
    return {"id": "call_1", "type": "function", "function": {"name": name, "arguments": arguments}}


def test_plain_text_is_valid():
    output = check_response(make_spec(), completion("hello"))
    assert output.valid and output.content == "hello" and output.parsed is None


def test_json_schema_answer_is_parsed_and_valid():
    spec = make_spec(OutputSchema("json_schema", PERSON))
    output = check_response(spec, completion(json.dumps({"name": "Ada", "age": 36})))
    assert output.valid
    assert output.parsed == {"name": "Ada", "age": 36}


def test_json_schema_violation_is_reported():
    spec = make_spec(OutputSchema("json_schema", PERSON))
    output = check_response(spec, completion('{"name": "Ada", "age": -1}'))
    assert not output.valid
    assert output.errors == ("at /age: -1 is less than the minimum of 0",)


def test_unparseable_json_is_reported():
    spec = make_spec(OutputSchema("json_object"))
    output = check_response(spec, completion("Sure! {name: Ada}"))
    assert not output.valid
    assert output.errors[0].startswith("the answer is not valid JSON: Expecting value")


def test_json_mode_requires_an_object():
    output = check_response(make_spec(OutputSchema("json_object")), completion("[1, 2]"))
    assert output.errors == ("the answer is JSON but not an object",)


def test_truncated_answer_is_flagged():
    output = check_response(make_spec(), completion("half an ans", finish_reason="length"))
    assert output.truncated and not output.valid


def test_tool_arguments_are_checked():
    spec = make_spec(tools=[Tool("lookup", PERSON)])
    good = check_response(spec, completion(tool_calls=[call("lookup", '{"name":"A","age":1}')]))
    assert good.valid and good.tool_calls[0].arguments == {"name": "A", "age": 1}
    bad = check_response(spec, completion(tool_calls=[call("lookup", '{"name":"A"}')]))
    assert bad.tool_calls[0].errors == ("at /: 'age' is a required property",)
    broken = check_response(spec, completion(tool_calls=[call("lookup", "{oops")]))
    assert broken.tool_calls[0].errors[0].startswith("arguments are not valid JSON")


def test_unknown_tool_is_reported():
    spec = make_spec(tools=[Tool("lookup", PERSON)])
    output = check_response(spec, completion(tool_calls=[call("other", "{}")]))
    assert output.tool_calls[0].errors == (
        "the model called 'other', which the spec does not define",
    )


@pytest.mark.parametrize(
    "response",
    [[], {}, {"choices": []}, {"choices": [{}]}, {"choices": [{"message": {"content": 3}}]}],
)
def test_malformed_completions(response):
    with pytest.raises(MalformedResponse):
        check_response(make_spec(), response)


def test_a_backtracking_schema_pattern_is_stopped_not_hung(monkeypatch):
    """A response schema's `pattern` went to Python's re, which backtracks for hours on
    `(a|aa)+$` against 36 a's and a b (issue 22.6, the schema side of regex checks)."""
    import runner.spec.patterns as patterns
    from runner.grade.output import schema_errors

    monkeypatch.setattr(patterns, "SEARCH_SECONDS", 0.05)
    schema = {"type": "object", "properties": {"x": {"type": "string", "pattern": "(a|aa)+$"}}}
    errors = schema_errors(schema, {"x": "a" * 36 + "b"})
    assert len(errors) == 1 and "was stopped: it backtracks" in errors[0]
    assert schema_errors(schema, {"x": "aaa"}) == []
    assert "does not match" in schema_errors(schema, {"x": "b"})[0]


def test_backtracking_pattern_properties_are_stopped_not_hung(monkeypatch):
    """patternProperties (and additionalProperties, which matches keys against them) went to
    re too: a key of 36 a's and a b hung the check."""
    import runner.spec.patterns as patterns
    from runner.grade.output import schema_errors

    monkeypatch.setattr(patterns, "SEARCH_SECONDS", 0.05)
    schema = {
        "type": "object",
        "patternProperties": {"(a|aa)+$": {"type": "integer"}, "^x": {"type": "string"}},
        "additionalProperties": False,
    }
    errors = schema_errors(schema, {"a" * 36 + "b": 1, "aaa": "not a number", "xy": "ok"})
    assert any("not of type 'integer'" in e for e in errors), errors
    assert any("Additional properties are not allowed" in e for e in errors), errors
    assert schema_errors(schema, {"aa": 2, "x1": "s"}) == []
