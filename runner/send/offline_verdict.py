"""The offline provider's verdicts: a judge asked offline answers deterministically.

A request whose structured output is a verdict (``pass``, and optionally ``score`` and
``reason``; see ``runner/spec/judges.py``) gets a verdict drawn from a hash of the request
body: the same request (the same judge, answer and variables) always gets the same verdict,
and about two in three pass, so a walkthrough or a test shows both. The ``reason`` says
plainly that no model read the answer. Nothing is sent and nothing costs anything.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from runner.spec.judges import is_verdict_schema

REASON = "offline verdict: no model read the answer (drawn from a hash of the request)"
# A field with only these keys takes any value of its type.
_PLAIN = frozenset({"type", "description", "title"})


def offline_verdict(schema: Any, instance: Any, seed: int) -> Any:
    """``instance`` (a schema-valid answer) with ``pass``, ``score`` and ``reason`` set from
    ``seed`` (drawn from a hash of the request) when ``schema`` is a verdict schema. A field
    is set only where its schema is plain (a type, and for a score a minimum and maximum), so
    the answer stays valid; any other schema's instance is returned unchanged."""
    if not isinstance(instance, dict) or not is_verdict_schema(schema):
        return instance
    passed = seed % 3 != 0
    properties = schema.get("properties") or {}
    verdict = dict(instance)
    if _plain(properties.get("pass")):
        verdict["pass"] = passed
    score = properties.get("score")
    if isinstance(score, Mapping) and _plain(score, frozenset({"minimum", "maximum"})):
        verdict["score"] = _score(score, passed, seed)
    reason = properties.get("reason")
    if (
        isinstance(reason, Mapping)
        and _plain(reason, frozenset({"minLength", "maxLength"}))
        and _fits(reason, REASON)
    ):
        verdict["reason"] = REASON
    return verdict


def _plain(field: Any, allowed: frozenset[str] = frozenset()) -> bool:
    return isinstance(field, Mapping) and set(field) <= _PLAIN | allowed


def _fits(field: Mapping[str, Any], text: str) -> bool:
    low, high = field.get("minLength", 0), field.get("maxLength", len(text))
    return isinstance(low, int) and isinstance(high, int) and low <= len(text) <= high


def _score(field: Mapping[str, Any], passed: bool, seed: int) -> float | int:
    """A score in the field's range: its upper part for a pass, lower part for a fail."""
    integer = field.get("type") == "integer"
    low = _number(field.get("minimum"), 1 if integer else 0)
    high = max(_number(field.get("maximum"), 5 if integer else 1), low)
    fraction = (seed * 7919) % 41 / 100  # 0.00 .. 0.40
    position = 0.6 + fraction if passed else fraction
    value = low + (high - low) * position
    return round(value) if integer else round(value, 2)


def _number(value: Any, default: float) -> float:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else default


def verdict_text(schema: Any, text: str, seed: int) -> str:
    """The compact JSON ``text`` of an instance of ``schema``, made a verdict when it is one."""
    try:
        instance = json.loads(text)
    except ValueError:
        return text
    changed = offline_verdict(schema, instance, seed)
    if changed is instance:
        return text
    return json.dumps(changed, separators=(",", ":"), ensure_ascii=False)
