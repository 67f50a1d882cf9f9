"""Read a chat completion and check what the model produced against what the spec asked for.

A model answer that is not valid JSON, does not match the response schema, or calls a tool
with bad arguments is recorded with the reason; it is never raised.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator, ValidationError, validators

from runner.spec.objects import Spec
from runner.spec.patterns import (
    SEARCH_SECONDS,
    PatternError,
    PatternTimeout,
    compile_pattern,
    search,
)

MAX_ERRORS = 5


class MalformedResponse(Exception):
    """The provider's answer is not a chat completion (no choices, no message, ...)."""


@dataclass(frozen=True)
class ToolCall:
    id: str | None
    name: str
    arguments: Any
    errors: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "arguments": self.arguments,
            "valid": not self.errors,
            "errors": list(self.errors),
        }


@dataclass(frozen=True)
class Output:
    """The model's answer, parsed, with every way it falls short of the spec."""

    content: str | None
    finish_reason: str | None
    parsed: Any = None
    tool_calls: tuple[ToolCall, ...] = ()
    errors: tuple[str, ...] = field(default=())
    reasoning: str | None = None

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"

    @property
    def valid(self) -> bool:
        return not self.errors and all(not call.errors for call in self.tool_calls)

    def to_json(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "content": self.content,
            "parsed": self.parsed,
            "finish_reason": self.finish_reason,
            "truncated": self.truncated,
            "valid": self.valid,
            "errors": list(self.errors),
            "tool_calls": [call.to_json() for call in self.tool_calls],
        }
        if self.reasoning is not None:
            result["reasoning"] = self.reasoning
        return result


def check_response(spec: Spec, response: Any) -> Output:
    """Parse ``response`` (a decoded chat.completion) and check it against ``spec``."""
    message, finish_reason = _first_choice(response)
    content = message.get("content")
    if content is not None and not isinstance(content, str):
        raise MalformedResponse("the message content is not text")
    calls = tuple(_tool_call(spec, raw) for raw in message.get("tool_calls") or [])
    errors: list[str] = []
    parsed = None
    if spec.output is not None and not calls:
        parsed, errors = _structured(spec, content)
    if finish_reason == "length":
        errors.append("the answer was cut off at the token limit (finish_reason: length)")
    return Output(content, finish_reason, parsed, calls, tuple(errors), message.get("reasoning"))


def _first_choice(response: Any) -> tuple[dict[str, Any], str | None]:
    if not isinstance(response, dict):
        raise MalformedResponse("the body is not a JSON object")
    choices = response.get("choices")
    if not isinstance(choices, list) or not choices:
        raise MalformedResponse("the body has no 'choices'")
    choice = choices[0]
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise MalformedResponse("the first choice has no 'message'")
    return message, choice.get("finish_reason")


def _structured(spec: Spec, content: str | None) -> tuple[Any, list[str]]:
    assert spec.output is not None
    if content is None:
        return None, ["the answer is empty, but the spec asks for JSON"]
    try:
        parsed = json.loads(content)
    except json.JSONDecodeError as exc:
        return None, [
            f"the answer is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ]
    if spec.output.kind == "json_object":
        return parsed, [] if isinstance(parsed, dict) else ["the answer is JSON but not an object"]
    return parsed, schema_errors(spec.output.schema or {}, parsed)


def _tool_call(spec: Spec, raw: Any) -> ToolCall:
    if not isinstance(raw, dict) or not isinstance(raw.get("function"), dict):
        raise MalformedResponse("a tool call has no 'function'")
    function = raw["function"]
    name = str(function.get("name"))
    text = function.get("arguments")
    tool = next((t for t in spec.tools if t.name == name), None)
    try:
        arguments = json.loads(text) if isinstance(text, str) else text
    except json.JSONDecodeError as exc:
        return ToolCall(raw.get("id"), name, text, (f"arguments are not valid JSON: {exc.msg}",))
    if tool is None:
        return ToolCall(
            raw.get("id"),
            name,
            arguments,
            (f"the model called '{name}', which the spec does not define",),
        )
    return ToolCall(
        raw.get("id"), name, arguments, tuple(schema_errors(tool.parameters, arguments))
    )


def output_errors(output: Any) -> list[str]:
    """Every reason a saved output (``Output.to_json()``) is invalid: the answer's own, then
    each tool call's, naming the call (``tool call get_weather: at /city: ...``)."""
    if not isinstance(output, dict):
        return []
    errors = [str(e) for e in output.get("errors") or []]
    for call in output.get("tool_calls") or []:
        if isinstance(call, dict):
            name = call.get("name")
            errors.extend(f"tool call {name}: {e}" for e in call.get("errors") or [])
    return errors


def _bounded_pattern(validator: Any, pattern: Any, instance: Any, schema: Any) -> Iterator[Any]:
    """JSON Schema's ``pattern``, searched in bounded time as ``regex:`` checks are: a
    spec's schema may hold a pattern that backtracks for hours on the model's answer."""
    if not validator.is_type(instance, "string"):
        return
    try:
        matched = search(compile_pattern(str(pattern)), instance)
    except PatternError as exc:
        yield ValidationError(f"the pattern {pattern!r} is not a valid regular expression: {exc}")
        return
    except PatternTimeout:
        yield ValidationError(
            f"the pattern {pattern!r} searched the value for over {SEARCH_SECONDS:g} s and was "
            "stopped: it backtracks (nested repeats such as (a+)+)"
        )
        return
    if not matched:
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _key_matches(pattern: str, key: str) -> bool:
    """Whether a key of the answer matches a ``patternProperties`` pattern, in bounded time
    (a search stopped by its limit counts as no match)."""
    try:
        return search(compile_pattern(pattern), key)
    except (PatternError, PatternTimeout):
        return False


def _bounded_pattern_properties(
    validator: Any, patterns: Any, instance: Any, schema: Any
) -> Iterator[Any]:
    """``patternProperties`` with the keys matched in bounded time."""
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if _key_matches(str(pattern), key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


_ADDITIONAL = Draft202012Validator.VALIDATORS["additionalProperties"]


def _bounded_additional_properties(
    validator: Any, additional: Any, instance: Any, schema: Any
) -> Iterator[Any]:
    """``additionalProperties``: jsonschema matches the keys against ``patternProperties``
    with ``re``; the keys that match (in bounded time) are handed to it as known instead."""
    patterns = schema.get("patternProperties")
    if not patterns or not validator.is_type(instance, "object"):
        yield from _ADDITIONAL(validator, additional, instance, schema)
        return
    matched = {k for k in instance if any(_key_matches(str(p), k) for p in patterns)}
    known = {**dict.fromkeys(matched, True), **(schema.get("properties") or {})}
    narrowed = {k: v for k, v in schema.items() if k != "patternProperties"}
    yield from _ADDITIONAL(validator, additional, instance, {**narrowed, "properties": known})


# Draft 2020-12, with every pattern (``pattern``, ``patternProperties``, and the keys
# ``additionalProperties`` compares with them) searched in bounded time.
AnswerValidator = validators.extend(
    Draft202012Validator,
    {
        "pattern": _bounded_pattern,
        "patternProperties": _bounded_pattern_properties,
        "additionalProperties": _bounded_additional_properties,
    },
)

_validators: dict[int, tuple[Any, Any]] = {}


def schema_errors(schema: Any, instance: Any) -> list[str]:
    """Readable reasons ``instance`` does not satisfy ``schema`` (empty when it does)."""
    cached = _validators.get(id(schema))
    if cached is None or cached[0] is not schema:
        # The schema object is kept in the cache so that its id cannot be reused.
        cached = (schema, AnswerValidator(schema))
        _validators[id(schema)] = cached
    errors = []
    for error in cached[1].iter_errors(instance):
        where = "/" + "/".join(str(p) for p in error.absolute_path)
        errors.append(f"at {where}: {error.message}")
        if len(errors) >= MAX_ERRORS:
            break
    return errors
