"""Keys in the wrong place: an unknown key that is valid one level up, one level down (inside
a sibling key) or beside its parent, found by walking the spec schema.

Peer tools ignore such a key in silence; a top-level ``base_url`` meant for ``provider:`` has
sent prompts and keys to the wrong host. So the message says where the key belongs and shows
the corrected lines, and when there is exactly one such place, ``runner validate --fix`` moves
it there.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from runner.check.forms import flow, resolve
from runner.spec.document import PathKey

# A key that means the same as another where it stands (people write a message's text under
# 'text:' and a text part's under 'content:'): where -> wrong key -> right key.
SAME_MEANING: dict[str, dict[str, str]] = {
    "message": {"text": "content", "message": "content", "prompt": "content"},
    "textPart": {"content": "text"},
    "function": {"arguments": "parameters", "schema": "parameters"},
    "responseFormat": {"schema": "json_schema"},
}


@dataclass(frozen=True)
class Place:
    """Where a misplaced key belongs: its full path there, and the lines to write."""

    to: PathKey
    lines: str


def nodes_at(root: dict[str, Any], path: PathKey) -> list[dict[str, Any]]:
    """The schema nodes that describe the value at ``path`` (every branch of an anyOf)."""
    defs = root.get("$defs", {})
    nodes = _expand(root, defs)
    for part in path:
        following: list[dict[str, Any]] = []
        for node in nodes:
            if isinstance(part, int):
                child = node.get("items")
            else:
                child = (node.get("properties") or {}).get(part)
                if child is None and isinstance(node.get("additionalProperties"), dict):
                    child = node["additionalProperties"]
            if isinstance(child, dict):
                following += _expand(child, defs)
        nodes = following
    return nodes


def def_name(root: dict[str, Any], path: PathKey) -> str | None:
    """The ``$defs`` name of the schema at ``path`` (message, textPart, ...), if it has one."""
    defs = root.get("$defs", {})
    node: Any = root
    for part in path:
        node = resolve(node, defs)
        if isinstance(part, int):
            node = node.get("items")
        else:
            node = (node.get("properties") or {}).get(part)
        if not isinstance(node, dict):
            return None
    ref = node.get("$ref") if isinstance(node, dict) else None
    return ref.rpartition("/")[2] if isinstance(ref, str) else None


def _expand(node: dict[str, Any], defs: dict[str, Any]) -> list[dict[str, Any]]:
    node = resolve(node, defs)
    found = [node]
    for key in ("anyOf", "oneOf", "allOf"):
        for branch in node.get(key) or []:
            if isinstance(branch, dict):
                found += _expand(branch, defs)
    return found


def properties(nodes: list[dict[str, Any]]) -> set[str]:
    return {name for node in nodes for name in (node.get("properties") or {})}


def belongs(root: dict[str, Any], data: Any, parent: PathKey, key: str) -> list[PathKey]:
    """The places (full paths of the key) where ``key``, unknown in the mapping at ``parent``,
    is a valid key, nearest kind first: inside a mapping-valued key beside it (down), in the
    mapping above (up), or inside a sibling of its parent (sideways). Only the first kind that
    has any is given: ``name`` beside a tool's ``type`` belongs in its ``function:``, not at
    the top of the spec. ``is_free`` tells whether the key can be moved there now."""
    for kind in (_down, _up, _sideways):
        found = list(dict.fromkeys(kind(root, parent, key)))
        if found:
            return found
    return []


def _down(root: dict[str, Any], parent: PathKey, key: str) -> Iterator[PathKey]:
    for sibling in sorted(properties(nodes_at(root, parent))):
        if sibling != key and key in _object_properties(root, (*parent, sibling)):
            yield (*parent, sibling, key)


def _up(root: dict[str, Any], parent: PathKey, key: str) -> Iterator[PathKey]:
    above = _mapping_above(parent)
    if above is not None and key in properties(nodes_at(root, above)):
        yield (*above, key)


def _sideways(root: dict[str, Any], parent: PathKey, key: str) -> Iterator[PathKey]:
    above = _mapping_above(parent)
    if above is None or not parent or not isinstance(parent[-1], str):
        return
    for sibling in sorted(properties(nodes_at(root, above))):
        if sibling != parent[-1] and key in _object_properties(root, (*above, sibling)):
            yield (*above, sibling, key)


def _object_properties(root: dict[str, Any], path: PathKey) -> set[str]:
    return properties([n for n in nodes_at(root, path) if n.get("type") in ("object", None)])


def _mapping_above(path: PathKey) -> PathKey | None:
    """The path of the mapping that holds the one at ``path`` (through a list, for an item)."""
    if not path:
        return None
    above = path[:-1]
    if isinstance(path[-1], int):
        while above and isinstance(above[-1], int):
            above = above[:-1]
        above = above[:-1]
    return above


def is_free(data: Any, path: PathKey) -> bool:
    """Whether a key can be put at ``path``: no such key there yet, and every step on the way
    a mapping or missing (then the move makes it)."""
    node = data
    for part in path[:-1]:
        if isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str):
            if part not in node:
                return True
            node = node[part]
        else:
            return False
    return isinstance(node, dict) and path[-1] not in node


def corrected_lines(data: Any, to: PathKey, value: Any) -> str:
    """The line to write for ``value`` at ``to``, with the user's own values: the mapping that
    receives the key, with the keys it has (or made, when it does not exist yet)."""
    parent_path, key = to[:-1], to[-1]
    node: Any = data
    for i, part in enumerate(parent_path):
        if isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
            continue
        if not isinstance(node, dict) or part not in node:
            made: Any = {key: value}
            for name in reversed(parent_path[i + 1 :]):
                made = {name: made}
            return f"{part}: {flow(made)}"
        node = node[part]
    if not parent_path or isinstance(parent_path[-1], int):
        return f"{key}: {flow(value)}"
    shown = dict(node) if isinstance(node, dict) else {}
    shown[str(key)] = value
    return f"{parent_path[-1]}: {flow(shown)}"
