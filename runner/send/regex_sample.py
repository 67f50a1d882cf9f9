"""Strings that match a regular expression, written by walking the parsed pattern: for the
``pattern`` keyword of JSON Schemas in offline answers.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

MAX_REPEAT = 10_000  # most items, characters or regex repeats generated for one value


def within_length(text: str, low: int, high: int | None) -> bool:
    return len(text) >= low and (high is None or len(text) <= high)


def regex_search(pattern: str, text: str) -> bool:
    try:
        return re.search(pattern, text) is not None
    except (re.error, TypeError, RecursionError):
        return False


def _load_regex_parser() -> Any:
    try:
        return importlib.import_module("re._parser")  # Python 3.11+
    except ImportError:  # pragma: no cover - Python 3.10
        return importlib.import_module("sre_parse")


_sre = _load_regex_parser()
_CHAR_POOL = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -_.,:;!?@#/"


def pattern_strings(pattern: str, variant: int, low: int, high: int | None) -> list[str]:
    """Strings matching ``pattern`` (JSON Schema: unanchored search) within the length bounds."""
    try:
        parsed = _sre.parse(pattern)
    except (re.error, TypeError, ValueError, RecursionError, OverflowError):
        return []
    extras = sorted({*range(9), *range(max(9, min(low, 4096) - 4), min(low, 4096) + 2)})
    found: list[str] = []
    for extra in extras:
        try:
            text = _RegexWalker(extra, variant).walk(parsed)
        except (_Unsupported, RecursionError, ValueError, OverflowError):
            return found
        if within_length(text, low, high) and regex_search(pattern, text):
            found.append(text)
            break
        if high is not None and len(text) > high:
            break
    return found


class _Unsupported(Exception):
    """A regex construct the walker does not generate."""


class _RegexWalker:
    """Writes one string matching a parsed regex: each repeat ``min + extra`` times."""

    def __init__(self, extra: int, variant: int) -> None:
        self.extra = extra
        self.variant = variant  # spent digit by digit: distinct variants give distinct strings
        self.counter = 0
        self.groups: dict[int, str] = {}

    def walk(self, parsed: Any) -> str:
        return "".join(self.node(op, av) for op, av in parsed)

    def node(self, op: Any, av: Any) -> str:
        if op is _sre.LITERAL:
            return chr(av)
        if op is _sre.NOT_LITERAL:
            return self.pick_from(lambda ch: ord(ch) != av)
        if op is _sre.ANY:
            return self.pick_from(lambda ch: ch != "\n")
        if op is _sre.IN:
            return self.in_set(av)
        if op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT, getattr(_sre, "POSSESSIVE_REPEAT", None)):
            low, high, sub = av
            if low > MAX_REPEAT:
                raise _Unsupported("too many repeats")
            times = low + self.extra if high is _sre.MAXREPEAT else min(high, low + self.extra)
            return "".join(self.walk(sub) for _ in range(times))
        if op is _sre.SUBPATTERN:
            text = self.walk(av[-1])
            if av[0] is not None:
                self.groups[av[0]] = text
            return text
        if op is getattr(_sre, "ATOMIC_GROUP", None):
            return self.walk(av)
        if op is _sre.BRANCH:
            return self.walk(av[1][0])
        if op is _sre.GROUPREF:
            return self.groups.get(av, "")
        if op in (_sre.AT, _sre.ASSERT, _sre.ASSERT_NOT):
            return ""
        raise _Unsupported(str(op))

    def in_set(self, items: list) -> str:
        if items and items[0][0] is _sre.NEGATE:
            return self.pick_from(lambda ch: not _in_set(ch, items[1:]))
        if not items:
            raise _Unsupported("empty set")
        op, av = items[0]
        if op is _sre.LITERAL:
            return chr(av)
        if op is _sre.RANGE:
            return self.spread(av[0], av[1])
        if op is _sre.CATEGORY and getattr(av, "name", "") == "CATEGORY_DIGIT":
            return self.spread(ord("0"), ord("9"))
        return self.pick_from(lambda ch: _in_set(ch, items))

    def digit(self, base: int) -> int:
        """The next digit of the variant in ``base``."""
        digit = self.variant % base
        self.variant //= base
        return digit

    def spread(self, first: int, last: int) -> str:
        """A character from a range, varying along the string so it reads less uniform."""
        self.counter += 1
        span = last - first + 1
        return chr(first + (self.counter * 7 + self.digit(span)) % span)

    def pick_from(self, allowed: Any) -> str:
        self.counter += 1
        start = (self.counter + self.digit(26)) % 26
        for ch in _CHAR_POOL[start:] + _CHAR_POOL[:start]:
            if allowed(ch):
                return ch
        raise _Unsupported("no character fits")


_CATEGORIES = {
    "CATEGORY_DIGIT": str.isdigit,
    "CATEGORY_NOT_DIGIT": lambda ch: not ch.isdigit(),
    "CATEGORY_SPACE": str.isspace,
    "CATEGORY_NOT_SPACE": lambda ch: not ch.isspace(),
    "CATEGORY_WORD": lambda ch: ch.isalnum() or ch == "_",
    "CATEGORY_NOT_WORD": lambda ch: not (ch.isalnum() or ch == "_"),
}


def _in_set(ch: str, items: list) -> bool:
    for op, av in items:
        if op is _sre.LITERAL and ord(ch) == av:
            return True
        if op is _sre.RANGE and av[0] <= ord(ch) <= av[1]:
            return True
        if op is _sre.CATEGORY:
            test = _CATEGORIES.get(getattr(av, "name", str(av)))
            if test is not None and test(ch):
                return True
    return False
