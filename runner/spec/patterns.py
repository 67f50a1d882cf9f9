"""Regular expressions of ``expect: - regex:`` checks, compiled and searched in bounded time.

A pattern from someone else's spec can backtrack for hours on a short answer (``(a|aa)+$``
against 36 ``a`` and a ``b``). Python's ``re`` has no way to stop it, and it holds the
interpreter lock meanwhile, so neither Ctrl-C nor SIGTERM is handled. Patterns are compiled
with the ``regex`` package instead: its syntax is ``re``'s (its default VERSION0 is the
``re``-compatible one, so every pattern keeps its meaning), a search stops after
``SEARCH_SECONDS``, and it lets go of the interpreter lock while it searches, so a signal is
seen at once.
"""

from __future__ import annotations

from functools import lru_cache

import regex

# How long one regex check may search one answer. A pattern that does not backtrack searches
# a megabyte of text in milliseconds; this bounds a run (and ``runner score``) on one that does.
SEARCH_SECONDS = 1.0

PatternError = regex.error


class PatternTimeout(Exception):
    """A search took longer than ``SEARCH_SECONDS``: the pattern backtracks on this text."""


@lru_cache(maxsize=256)
def compile_pattern(text: str, ignore_case: bool = False) -> regex.Pattern[str]:
    """``text`` compiled as ``re`` would read it; ``PatternError`` when it is not a pattern."""
    return regex.compile(text, regex.IGNORECASE if ignore_case else 0)


def search(pattern: regex.Pattern[str], text: str) -> bool:
    """True when ``pattern`` matches somewhere in ``text``; ``PatternTimeout`` after
    ``SEARCH_SECONDS``."""
    try:
        return pattern.search(text, concurrent=True, timeout=SEARCH_SECONDS) is not None
    except TimeoutError:
        raise PatternTimeout from None
