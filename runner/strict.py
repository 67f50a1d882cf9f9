"""The rules a JSON Schema must follow for the provider's strict structured outputs.

With ``strict: true`` the provider constrains decoding to the schema and rejects a schema
outside the supported subset with a 400 error; checking here catches that before any request
is paid for.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

# Keywords the provider's strict mode does not support.
UNSUPPORTED_KEYWORDS = frozenset(
    {
        "allOf",
        "not",
        "if",
        "then",
        "else",
        "dependentRequired",
        "dependentSchemas",
        "patternProperties",
        "unevaluatedProperties",
        "unevaluatedItems",
        "propertyNames",
        "minProperties",
        "maxProperties",
        "contains",
        "minContains",
        "maxContains",
    }
)
MAX_DEPTH = 10
MAX_PROPERTIES = 5000
SUBSCHEMA_LISTS = ("anyOf", "oneOf", "prefixItems")
SUBSCHEMA_MAPS = ("properties", "$defs", "definitions")


def strict_mode_problems(schema: Any) -> list[tuple[str, str]]:
    """Each ``(location, message)`` where ``schema`` breaks the strict-mode rules."""
    problems: list[tuple[str, str]] = []
    if not isinstance(schema, dict):
        return [("", "the schema must be a mapping")]
    if schema.get("type") != "object":
        problems.append(("", "the top level must be 'type: object'"))
    if "anyOf" in schema:
        problems.append(("", "the top level may not be an anyOf"))
    property_count = 0
    for location, node, depth in _walk(schema, "", 0):
        problems.extend((location, message) for message in _node_problems(node, depth))
        property_count += len(node.get("properties") or {})
    if property_count > MAX_PROPERTIES:
        problems.append(("", f"more than {MAX_PROPERTIES} properties in all"))
    return problems


def _node_problems(node: dict[str, Any], depth: int) -> Iterator[str]:
    for keyword in sorted(UNSUPPORTED_KEYWORDS & node.keys()):
        yield f"'{keyword}' is not supported"
    if depth > MAX_DEPTH:
        yield f"objects are nested more than {MAX_DEPTH} levels deep"
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


def _walk(node: Any, location: str, depth: int) -> Iterator[tuple[str, dict[str, Any], int]]:
    if not isinstance(node, dict):
        return
    yield location or "/", node, depth
    nested = depth + (1 if _is_object(node) else 0)
    for key in SUBSCHEMA_MAPS:
        for name, child in (node.get(key) or {}).items():
            yield from _walk(child, f"{location}/{key}/{name}", nested)
    for key in SUBSCHEMA_LISTS:
        for i, child in enumerate(node.get(key) or []):
            yield from _walk(child, f"{location}/{key}/{i}", nested)
    if isinstance(node.get("items"), dict):
        yield from _walk(node["items"], f"{location}/items", nested)
    if isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node["additionalProperties"], f"{location}/additionalProperties", nested)
