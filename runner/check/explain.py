"""Turn JSON Schema validation errors into sentences a non-programmer can act on.

jsonschema reports what failed in schema terms (``'hot' is not of type 'number'``); a person
editing YAML needs the key, what it should hold, and often a guess at what they meant.
"""

from __future__ import annotations

import difflib
import json
from functools import lru_cache
from importlib import resources
from typing import Any

from jsonschema.exceptions import ValidationError

from runner.errors import Problem
from runner.spec.document import Document, PathKey
from runner.spec.hints import split_message, tool_choice_mistake, top_level_message_field

TYPE_WORDS = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping of keys to values",
    "null": "null",
}

KEY_HINTS = {
    "prompt": "put the text in a message: messages: [{role: user, content: ...}]",
    "system": "put the system prompt in a message: messages: [{role: system, content: ...}]",
    "params": "generation parameters go at the top level under their API names",
    "parameters": "generation parameters go at the top level under their API names",
    "variables": "template variables go under 'vars'",
}


def explain(error: ValidationError, doc: Document) -> list[Problem]:
    """The Problems of one jsonschema error, positioned in ``doc``: one, or one per unknown
    key when a mapping holds several (jsonschema reports them as one error)."""
    error = _most_relevant(error)
    path: PathKey = tuple(error.absolute_path)
    if path == ("tool_choice",) and isinstance(error.instance, str):
        mistake = tool_choice_mistake(error.instance)
        if mistake is not None:
            return [doc.problem(path, *mistake)]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(_schema(error).get("properties", {}))
        extra = [k for k in error.instance if k not in allowed]
        return [_unknown_key(key, allowed, path, doc) for key in extra or ["?"]]
    handler = _HANDLERS.get(str(error.validator), _generic)
    return [handler(error, path, doc)]


def _most_relevant(error: ValidationError) -> ValidationError:
    """For anyOf/oneOf, the branch error that matches what the user seems to have meant."""
    while error.validator in ("anyOf", "oneOf") and error.context:
        same_type = [e for e in error.context if e.validator != "type"]
        if not same_type:
            return error
        error = max(same_type, key=lambda e: len(e.absolute_path))
    return error


def _label(path: PathKey) -> str:
    """A readable name for a place in the spec: ``messages[1].content``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return f"'{text}'" if text else "the spec"


def _show(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else _json(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _json(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return str(value)


def _closest(word: str, choices: list[str]) -> str | None:
    found = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if not found:
        lowered = {c.lower(): c for c in choices}
        found = [lowered[word.lower()]] if word.lower() in lowered else []
    return found[0] if found else None


def _schema(error: ValidationError) -> dict[str, Any]:
    return error.schema if isinstance(error.schema, dict) else {}


def _instance(error: ValidationError) -> Any:
    return error.instance


def _custom(error: ValidationError) -> str | None:
    """The schema's own wording for this mistake (``errorMessage``), naming the key."""
    message = _schema(error).get("errorMessage")
    if not isinstance(message, str):
        return None
    return f"{_label(tuple(error.absolute_path))} {message}"


def _unknown_key(key: str, allowed: list[str], path: PathKey, doc: Document) -> Problem:
    guess = _closest(key, allowed)
    hint: str | None
    if not path and top_level_message_field(key):
        hint = top_level_message_field(key)
    elif guess:
        hint = f"did you mean '{guess}'?"
    elif key in KEY_HINTS:
        hint = KEY_HINTS[key]
    else:
        hint = f"allowed here: {', '.join(allowed)}" if allowed else None
    where = "" if not path else f" in {_label(path)}"
    return doc.problem((*path, key), f"unknown key '{key}'{where}", hint, key=True)


@lru_cache(maxsize=1)
def _spec_properties() -> dict[str, Any]:
    """The spec schema's top-level properties (for a 'required' in an if/then branch)."""
    text = resources.files("runner").joinpath("spec.schema.json").read_text(encoding="utf-8")
    return dict(json.loads(text)["properties"])


def _required(error: ValidationError, path: PathKey, doc: Document) -> Problem:
    custom = _custom(error)
    if custom:
        return doc.problem(path, custom, key=True)
    missing = str(error.message).split("'")[1] if "'" in error.message else error.message
    properties = _schema(error).get("properties") or _spec_properties()
    prop = properties.get(missing, {})
    examples = prop.get("examples") if isinstance(prop, dict) else None
    hint = (
        f"for example: {missing}: {examples[0]}"
        if examples and not isinstance(examples[0], dict | list)
        else f"add '{missing}:'"
    )
    hint = split_message(path, missing, doc) or hint
    where = "the spec" if not path else _label(path)
    return doc.problem(path, f"{where} is missing the required key '{missing}'", hint, key=True)


def _type(error: ValidationError, path: PathKey, doc: Document) -> Problem:
    expected: Any = error.validator_value
    kinds = [str(k) for k in (expected if isinstance(expected, list) else [expected])]
    wanted = " or ".join(TYPE_WORDS.get(k, k) for k in kinds)
    got = _instance(error)
    hint = None
    if isinstance(got, str) and any(k in ("number", "integer") for k in kinds):
        hint = "write the number without quotes" if _is_number(got) else None
    elif isinstance(got, str) and "boolean" in kinds and got.lower() in ("true", "false"):
        hint = "write true or false without quotes"
    elif isinstance(got, dict) and "array" in kinds:
        hint = "start each item of a list on its own line with '- '"
    elif got is None:
        hint = "the value is empty; write one after the ':'"
    message = f"{_label(path)} must be {wanted}, not {_kind(got)}"
    return doc.problem(path, _custom(error) or message, hint)


def _kind(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return f"true/false ({_show(value)})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"text ({_show(value)})"
    return "a list" if isinstance(value, list) else "a mapping"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _enum(error: ValidationError, path: PathKey, doc: Document) -> Problem:
    values: Any = error.validator_value
    options = [str(o) for o in values]
    guess = _closest(str(error.instance), options) if isinstance(error.instance, str) else None
    hint = f"did you mean '{guess}'?" if guess else None
    message = f"{_label(path)} must be one of: {', '.join(options)} (got {_show(error.instance)})"
    return doc.problem(path, _custom(error) or message, hint)


def _const(error: ValidationError, path: PathKey, doc: Document) -> Problem:
    message = f"{_label(path)} must be {_show(error.validator_value)}"
    return doc.problem(path, _custom(error) or f"{message} (got {_show(error.instance)})")


def _bound(error: ValidationError, path: PathKey, doc: Document) -> Problem:
    words = {
        "minimum": "at least",
        "maximum": "at most",
        "exclusiveMinimum": "more than",
        "exclusiveMaximum": "less than",
    }
    word = words[str(error.validator)]
    message = f"{_label(path)} must be {word} {error.validator_value} (got {error.instance})"
    return doc.problem(path, _custom(error) or message)


def _count(error: ValidationError, path: PathKey, doc: Document) -> Problem:
    limit = error.validator_value
    what = "items" if error.validator in ("minItems", "maxItems") else "characters"
    instance = _instance(error)
    got = len(instance) if isinstance(instance, list | str) else 0
    if error.validator in ("minLength",) and limit == 1:
        return doc.problem(path, _custom(error) or f"{_label(path)} must not be empty")
    if error.validator in ("minItems",) and limit == 1:
        return doc.problem(path, _custom(error) or f"{_label(path)} needs at least one item")
    side = "at least" if str(error.validator).startswith("min") else "at most"
    message = f"{_label(path)} must have {side} {limit} {what} (it has {got})"
    return doc.problem(path, _custom(error) or message)


def _pattern(error: ValidationError, path: PathKey, doc: Document) -> Problem:
    message = f"{_label(path)} has the wrong form ({_show(error.instance)})"
    return doc.problem(
        path,
        _custom(error) or message,
        None if _custom(error) else f"it must match the pattern {error.validator_value}",
    )


def _generic(error: ValidationError, path: PathKey, doc: Document) -> Problem:
    return doc.problem(path, _custom(error) or f"{_label(path)}: {error.message}")


_HANDLERS = {
    "required": _required,
    "type": _type,
    "enum": _enum,
    "const": _const,
    "minimum": _bound,
    "maximum": _bound,
    "exclusiveMinimum": _bound,
    "exclusiveMaximum": _bound,
    "minItems": _count,
    "maxItems": _count,
    "minLength": _count,
    "maxLength": _count,
    "pattern": _pattern,
}
