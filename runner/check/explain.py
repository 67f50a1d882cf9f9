"""Turn JSON Schema validation errors into sentences a non-programmer can act on.

jsonschema reports what failed in schema terms (``'hot' is not of type 'number'``); a person
editing YAML needs the key, what it should hold, and often a guess at what they meant.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

from jsonschema.exceptions import ValidationError

from runner.check.forms import corrected_form, flow, key_line
from runner.check.misplaced import SAME_MEANING, belongs, corrected_lines, def_name, is_free
from runner.errors import Fix, Problem, plural
from runner.spec.document import Document, PathKey
from runner.spec.hints import (
    TOOL_CHOICE_WORDS,
    closest,
    did_you_mean,
    is_slip,
    split_message,
    tool_choice_mistake,
    top_level_message_field,
)

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
        return [_tool_choice(error.instance, doc)]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(_schema(error).get("properties", {}))
        extra = [k for k in error.instance if k not in allowed]
        return [_unknown_key(key, allowed, path, doc) for key in extra or ["?"]]
    if error.validator == "type":
        wrong_form = _wrong_form(error, path, doc)
        if wrong_form is not None:
            return [wrong_form]
    handler = _HANDLERS.get(str(error.validator), _generic)
    return [handler(error, path, doc)]


def _tool_choice(value: str, doc: Document) -> Problem:
    """tool_choice: a slip of none/auto/required, or a tool's name (then the object form)."""
    path: PathKey = ("tool_choice",)
    tools = doc.data.get("tools") if isinstance(doc.data, dict) else None
    names = [
        t["function"].get("name")
        for t in tools or []
        if isinstance(t, dict) and isinstance(t.get("function"), dict)
    ]
    word = closest(value, TOOL_CHOICE_WORDS)
    if word is not None and value not in names:
        return doc.problem(
            path,
            f"'tool_choice' is none, auto, required, or an object naming one tool (got {value!r})",
            f"did you mean '{word}'? write: tool_choice: {word}",
            code="tool-choice",
            fix=Fix("set", path, value, value=word) if is_slip(value, word) else None,
        )
    message, hint = tool_choice_mistake(value) or (f"'tool_choice' cannot be {value!r}", None)
    return doc.problem(path, message, hint, code="tool-choice")


def _most_relevant(error: ValidationError) -> ValidationError:
    """For anyOf/oneOf, the branch error that matches what the user seems to have meant: not
    one about the value's type, and for a mapping or list not 'must be one of' a few words
    (``provider: {nme: x}`` is a mapping with an unknown key, not a wrong provider name)."""
    while error.validator in ("anyOf", "oneOf") and error.context:
        same_type = [e for e in error.context if e.validator != "type"]
        if isinstance(error.instance, dict | list):
            shaped = [e for e in same_type if e.validator not in ("enum", "const")]
            same_type = shaped or same_type
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
    """An unknown key, explained by what it most likely is: a slip of an allowed key, a key
    meaning the same as one here, or a key that belongs elsewhere (with the corrected line)."""
    where = "" if not path else f" in {_label(path)}"
    at: PathKey = (*path, key)
    value = _value(doc, at)
    guess = closest(key, allowed)
    mapping = _value(doc, path)
    if guess is not None and isinstance(mapping, dict) and guess not in mapping:
        fix = Fix("rename", at, value, (*path, guess)) if is_slip(key, guess) else None
        return doc.problem(
            at,
            f"unknown key '{key}'{where}",
            f"did you mean '{guess}'? write: {key_line(guess, value)}",
            key=True,
            code="unknown-key",
            fix=fix,
        )
    same = SAME_MEANING.get(def_name(spec_schema(), path) or "", {}).get(key)
    if same is not None and isinstance(mapping, dict) and same not in mapping:
        return doc.problem(
            at,
            f"unknown key '{key}'{where}: here it is called '{same}'",
            f"write: {key_line(same, value)}",
            key=True,
            code="unknown-key",
            fix=Fix("rename", at, value, (*path, same)),
        )
    misplaced = _misplaced(key, value, path, doc)
    if misplaced is not None:
        return misplaced
    hint: str | None
    if not path and top_level_message_field(key):
        hint = top_level_message_field(key)
    elif key in KEY_HINTS:
        hint = KEY_HINTS[key]
    else:
        hint = did_you_mean(key, allowed) or (
            f"allowed here: {', '.join(allowed)}" if allowed else None
        )
    return doc.problem(at, f"unknown key '{key}'{where}", hint, key=True, code="unknown-key")


def _misplaced(key: str, value: Any, path: PathKey, doc: Document) -> Problem | None:
    """The problem of a key that is valid one level up, down or beside where it is."""
    places = [p for p in belongs(spec_schema(), doc.data, path, key) if is_free(doc.data, p)]
    if not places:
        return None
    where = "at the top level" if not path else f"in {_label(path)}"
    at: PathKey = (*path, key)
    if len(places) > 1:
        listed = " or ".join(_label(p[:-1]) for p in places)
        return doc.problem(
            at,
            f"'{key}' does not belong {where}; it belongs in {listed}",
            "move it into the one you meant",
            key=True,
            code="misplaced-key",
        )
    to = places[0]
    return doc.problem(
        at,
        f"'{key}' does not belong {where}; it belongs in {_label(to[:-1])}"
        + _ignored_warning(key, to),
        f"move it there: {corrected_lines(doc.data, to, value)}",
        key=True,
        code="misplaced-key",
        fix=Fix("move", at, value, to),
    )


def _ignored_warning(key: str, to: PathKey) -> str:
    if to[0] == "provider":
        return (
            f" (a {key} anywhere else is not used: the requests would go to the default provider)"
        )
    return ""


def _wrong_form(error: ValidationError, path: PathKey, doc: Document) -> Problem | None:
    """A value of the right meaning in the wrong form, with the form it should have."""
    expected: Any = error.validator_value
    kinds = [str(k) for k in (expected if isinstance(expected, list) else [expected])]
    found = corrected_form(error.instance, kinds, _schema(error), spec_schema().get("$defs", {}))
    if found is None:
        return None
    why, fixed = found
    wanted = " or ".join(TYPE_WORDS.get(k, k) for k in kinds)
    name = next((p for p in reversed(path) if isinstance(p, str)), "")
    line = f"{name}: {flow(fixed)}" if path and isinstance(path[-1], str) else f"- {flow(fixed)}"
    return doc.problem(
        path,
        f"{_label(path)} must be {wanted}, not {_kind(error.instance)}: {why}",
        f"write: {line}",
        code="wrong-form",
        fix=Fix("set", path, error.instance, value=fixed),
    )


def _value(doc: Document, path: PathKey) -> Any:
    node: Any = doc.data
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node


@lru_cache(maxsize=1)
def spec_schema() -> dict[str, Any]:
    """The spec JSON Schema as a mapping (for finding where a misplaced key belongs)."""
    text = resources.files("runner").joinpath("spec.schema.json").read_text(encoding="utf-8")
    return dict(json.loads(text))


@lru_cache(maxsize=1)
def _spec_properties() -> dict[str, Any]:
    """The spec schema's top-level properties (for a 'required' in an if/then branch)."""
    text = resources.files("runner").joinpath("spec.schema.json").read_text(encoding="utf-8")
    return dict(json.loads(text)["properties"])


def _required(error: ValidationError, path: PathKey, doc: Document) -> Problem:
    custom = _custom(error)
    if custom:
        return doc.problem(path, custom, key=True, code="missing-key")
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
    return doc.problem(
        path, f"{where} is missing the required key '{missing}'", hint, key=True, code="missing-key"
    )


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
    return doc.problem(path, _custom(error) or message, hint, code="wrong-type")


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
    got = error.instance
    guess = None
    if isinstance(got, str) and all(isinstance(v, str) for v in values):
        guess = closest(got, options)
    hint, fix = None, None
    if guess is not None and isinstance(got, str):
        name = next((p for p in reversed(path) if isinstance(p, str)), "")
        line = f"{name}: {guess}" if path and isinstance(path[-1], str) else f"- {guess}"
        hint = f"did you mean '{guess}'? write: {line}"
        fix = Fix("set", path, got, value=guess) if is_slip(got, guess) else None
    message = f"{_label(path)} must be one of: {', '.join(options)} (got {_show(got)})"
    return doc.problem(path, _custom(error) or message, hint, code="unknown-value", fix=fix)


def _const(error: ValidationError, path: PathKey, doc: Document) -> Problem:
    message = f"{_label(path)} must be {_show(error.validator_value)}"
    return doc.problem(
        path, _custom(error) or f"{message} (got {_show(error.instance)})", code="schema-rule"
    )


def _bound(error: ValidationError, path: PathKey, doc: Document) -> Problem:
    words = {
        "minimum": "at least",
        "maximum": "at most",
        "exclusiveMinimum": "more than",
        "exclusiveMaximum": "less than",
    }
    word = words[str(error.validator)]
    message = f"{_label(path)} must be {word} {error.validator_value} (got {error.instance})"
    return doc.problem(path, _custom(error) or message, code="out-of-range")


def _count(error: ValidationError, path: PathKey, doc: Document) -> Problem:
    limit = error.validator_value
    what = "items" if error.validator in ("minItems", "maxItems") else "characters"
    instance = _instance(error)
    got = len(instance) if isinstance(instance, list | str) else 0
    if error.validator in ("minLength",) and limit == 1:
        return doc.problem(
            path, _custom(error) or f"{_label(path)} must not be empty", code="wrong-size"
        )
    if error.validator in ("minItems",) and limit == 1:
        return doc.problem(
            path, _custom(error) or f"{_label(path)} needs at least one item", code="wrong-size"
        )
    side = "at least" if str(error.validator).startswith("min") else "at most"
    count = plural(limit if isinstance(limit, int) else 0, what[:-1])
    message = f"{_label(path)} must have {side} {count} (it has {got})"
    return doc.problem(path, _custom(error) or message, code="wrong-size")


def _pattern(error: ValidationError, path: PathKey, doc: Document) -> Problem:
    message = f"{_label(path)} has the wrong form ({_show(error.instance)})"
    return doc.problem(
        path,
        _custom(error) or message,
        None if _custom(error) else f"it must match the pattern {error.validator_value}",
        code="wrong-pattern",
    )


def _generic(error: ValidationError, path: PathKey, doc: Document) -> Problem:
    return doc.problem(
        path, _custom(error) or f"{_label(path)}: {error.message}", code="schema-rule"
    )


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
