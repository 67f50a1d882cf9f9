"""Values of the right meaning in the wrong form, and the form they should have.

``response_format: json_object`` means ``{type: json_object}``; ``image_url: https://...``
means ``{url: https://...}``; ``temperature: "0,7"`` is 0.7 written with a decimal comma;
``one_of: billing, platform, docs`` is a list written as one text. Each correction is offered
only when the corrected value is valid where it stands (checked against the spec schema), and
shown as the line the user should write, with their own values.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml
from jsonschema import Draft202012Validator

_DECIMAL_COMMA = re.compile(r"-?\d+,\d+")
_THOUSANDS = re.compile(r"-?\d{1,3}(?:[ ,_]\d{3})+")
_BOOLEANS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}


def corrected_form(
    value: Any, kinds: list[str], node: dict[str, Any], defs: dict[str, Any]
) -> tuple[str, Any] | None:
    """(how the form is wrong, the corrected value) for ``value``, which the schema ``node``
    (with the spec schema's ``defs``) wants as one of the JSON ``kinds``; None when there is
    no single correction that is valid there."""
    valid = [
        (why, fixed)
        for why, fixed in _candidates(value, kinds, node, defs)
        if _valid(fixed, node, defs)
    ]
    distinct = {json.dumps(fixed, sort_keys=True) for _, fixed in valid}
    return valid[0] if len(distinct) == 1 else None  # "1,500" may be 1500 or 1.5: no guess


def _candidates(
    value: Any, kinds: list[str], node: dict[str, Any], defs: dict[str, Any]
) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    if isinstance(value, str):
        text = value.strip()
        if "object" in kinds:
            found += _as_mapping(text, resolve(node, defs))
        if "integer" in kinds or "number" in kinds:
            found += _as_number(text, integer="number" not in kinds)
        if "boolean" in kinds and text.lower() in _BOOLEANS:
            found.append(("true and false are written without quotes", _BOOLEANS[text.lower()]))
        if "array" in kinds:
            items = [item.strip() for item in text.split(",")] if "," in text else [text]
            found.append(("a list is written in [ ] (or one '- ' line per item)", items))
    elif isinstance(value, dict) and "array" in kinds:
        found.append(("a list is written in [ ] (or one '- ' line per item)", [value]))
    elif isinstance(value, int) and not isinstance(value, bool) and "string" in kinds:
        found.append(("text that looks like a number needs quotes", str(value)))
    return found


def _as_mapping(text: str, node: dict[str, Any]) -> list[tuple[str, Any]]:
    properties = _properties(node)
    if "type" in properties:
        return [(f"it is a mapping, with {text} as its 'type'", {"type": text})]
    if "url" in properties and re.match(r"(https?://|data:)", text):
        return [("an image URL goes under 'url:'", {"url": text})]
    if "path" in properties and "url" in properties:
        return [("a local image goes under 'path:'", {"path": text})]
    return []


def _as_number(text: str, integer: bool) -> list[tuple[str, Any]]:
    if _THOUSANDS.fullmatch(text):
        plain = re.sub(r"[ ,_]", "", text)
        found: list[tuple[str, Any]] = [("numbers are written without separators", int(plain))]
        if not integer and _DECIMAL_COMMA.fullmatch(text):
            # "1,000" is a thousand, or 1.0 with a decimal comma: kept only when the field's
            # range allows just one of them (corrected_form)
            found.append(
                ("numbers are written with a decimal point", float(text.replace(",", ".")))
            )
        return found
    if _DECIMAL_COMMA.fullmatch(text) and not integer:
        return [("numbers are written with a decimal point", float(text.replace(",", ".")))]
    try:
        number = float(text)
    except ValueError:
        return []
    if integer:
        return [("numbers are written without quotes", int(number))] if number.is_integer() else []
    return [("numbers are written without quotes", int(number) if text.isdigit() else number)]


def resolve(node: Any, defs: dict[str, Any]) -> dict[str, Any]:
    """``node`` with a ``$ref`` to the spec schema's ``$defs`` followed."""
    while isinstance(node, dict) and isinstance(node.get("$ref"), str):
        node = defs.get(node["$ref"].rpartition("/")[2], {})
    return node if isinstance(node, dict) else {}


def _properties(node: dict[str, Any]) -> dict[str, Any]:
    properties = dict(node.get("properties") or {})
    for key in ("anyOf", "oneOf", "allOf"):
        for branch in node.get(key) or []:
            if isinstance(branch, dict):
                properties.update(branch.get("properties") or {})
    return properties


def _valid(candidate: Any, node: dict[str, Any], defs: dict[str, Any]) -> bool:
    validator = Draft202012Validator({"$defs": defs, **node})
    return not any(True for _ in validator.iter_errors(candidate))


def flow(value: Any, limit: int = 70) -> str:
    """``value`` as one line of YAML (flow style), text left unquoted wherever YAML reads it
    back the same; long mappings and lists are cut to ``{...}`` and ``[...]``."""
    text = _flow(value)
    if len(text) > limit and isinstance(value, dict | list):
        return "{...}" if isinstance(value, dict) else "[...]"
    return text


def key_line(key: str | int, value: Any) -> str:
    """The line ``key: value`` as it should be written; just ``key:`` when the value is a long
    mapping or list (it stays as written below the key)."""
    shown = flow(value, 50)
    if (isinstance(value, dict | list) and "..." in shown) or (
        isinstance(value, str) and "\n" in value
    ):
        return f"{key}:"
    return f"{key}: {shown}"


def _flow(value: Any) -> str:
    if isinstance(value, dict):
        items = (f"{_flow_text(str(k))}: {flow(v, 40)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(flow(v, 40) for v in value) + "]"
    if isinstance(value, str):
        return _flow_text(value)
    return json.dumps(value)


def _flow_text(text: str) -> str:
    try:
        plain = yaml.safe_load("{k: " + text + "}") == {"k": text} and "\n" not in text
    except yaml.YAMLError:
        plain = False
    return text if plain else json.dumps(text, ensure_ascii=False)
