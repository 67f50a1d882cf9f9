"""The rules a JSON Schema must follow for strict structured outputs.

With ``strict: true`` Groq (like OpenAI) constrains decoding to the schema and requires that
every property is required and every object sets ``additionalProperties: false``
(https://console.groq.com/docs/structured-outputs); a schema breaking that is rejected with a
400 error. Checking here catches it before any request is paid for.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

SUBSCHEMA_LISTS = ("anyOf", "oneOf", "prefixItems")
SUBSCHEMA_MAPS = ("properties", "$defs", "definitions")


def strict_mode_problems(schema: Any) -> list[tuple[str, str]]:
    """Each ``(location, message)`` where ``schema`` breaks the strict-mode rules."""
    problems: list[tuple[str, str]] = []
    if not isinstance(schema, dict):
        return [("", "the schema must be a mapping")]
    if schema.get("type") != "object":
        problems.append(("", "the top level must be 'type: object'"))
    for location, node in _walk(schema, ""):
        problems.extend((location, message) for message in _node_problems(node))
    return problems


def _node_problems(node: dict[str, Any]) -> Iterator[str]:
    if _is_object(node):
        if node.get("additionalProperties") is not False:
            yield "every object needs 'additionalProperties: false'"
        properties = node.get("properties") or {}
        missing = [name for name in properties if name not in (node.get("required") or [])]
        if missing:
            yield (
                f"every property must be listed in 'required' (missing: "
                f"{', '.join(missing)}); make a property optional with type [..., 'null']"
            )


def _is_object(node: dict[str, Any]) -> bool:
    kind = node.get("type")
    return (
        kind == "object"
        or (isinstance(kind, list) and "object" in kind)
        or (kind is None and "properties" in node)
    )


def _walk(node: Any, location: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if not isinstance(node, dict):
        return
    yield location or "/", node
    for key in SUBSCHEMA_MAPS:
        for name, child in (node.get(key) or {}).items():
            yield from _walk(child, f"{location}/{key}/{name}")
    for key in SUBSCHEMA_LISTS:
        for i, child in enumerate(node.get(key) or []):
            yield from _walk(child, f"{location}/{key}/{i}")
    if isinstance(node.get("items"), dict):
        yield from _walk(node["items"], f"{location}/items")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node["additionalProperties"], f"{location}/additionalProperties")
