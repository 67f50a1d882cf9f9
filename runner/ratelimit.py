"""Client-side rate limiting so that a large run slows down before the provider throttles it.

Two sources of limits:
- the user's own budget (``--rpm``, ``--tpm``): requests are paced evenly, and tokens drawn
  from a bucket that refills at the per-minute rate;
- the provider's ``x-ratelimit-*`` response headers: when the remaining requests or tokens
  run low, new requests wait until the reset time the provider announced.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_reset(text: str | None) -> float | None:
    """Seconds in a reset header: ``"7.66s"``, ``"2m59.56s"``, ``"1h2m"``, ``"250ms"``, ``"3"``."""
    if not text:
        return None
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)


class RateLimiter:
    """Blocks callers of ``acquire`` as long as sending now would exceed a known limit."""

    def __init__(
        self,
        rpm: float | None = None,
        tpm: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._interval = 60.0 / rpm if rpm else 0.0
        self._tpm = tpm
        self._tokens = float(tpm) if tpm else 0.0
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_slot = clock()
        self._refilled_at = clock()
        self._paused_until = 0.0
        self.waited = 0.0

    def acquire(self, tokens: int = 0) -> None:
        """Wait until one request of about ``tokens`` tokens may be sent."""
        while True:
            with self._lock:
                delay = self._delay(tokens)
                if delay <= 0:
                    self._commit(tokens)
                    return
            self.waited += delay
            self._sleep(min(delay, 1.0))

    def observe(self, headers: Mapping[str, str]) -> None:
        """Learn from a response's rate-limit headers (names lower-cased)."""
        pause = 0.0
        if _number(headers.get("x-ratelimit-remaining-requests")) == 0:
            pause = parse_reset(headers.get("x-ratelimit-reset-requests")) or 1.0
        remaining_tokens = _number(headers.get("x-ratelimit-remaining-tokens"))
        if remaining_tokens is not None and remaining_tokens <= 0:
            pause = max(pause, parse_reset(headers.get("x-ratelimit-reset-tokens")) or 1.0)
        retry_after = _number(headers.get("retry-after"))
        if retry_after:
            pause = max(pause, retry_after)
        if pause > 0:
            with self._lock:
                self._paused_until = max(self._paused_until, self._clock() + pause)

    def _delay(self, tokens: int) -> float:
        now = self._clock()
        delay = max(self._paused_until - now, self._next_slot - now if self._interval else 0.0)
        if self._tpm:
            self._refill(now)
            wanted = min(float(tokens), float(self._tpm))
            if self._tokens < wanted:
                delay = max(delay, (wanted - self._tokens) * 60.0 / self._tpm)
        return delay

    def _refill(self, now: float) -> None:
        assert self._tpm
        self._tokens = min(
            float(self._tpm), self._tokens + (now - self._refilled_at) * self._tpm / 60.0
        )
        self._refilled_at = now

    def _commit(self, tokens: int) -> None:
        now = self._clock()
        if self._interval:
            self._next_slot = max(self._next_slot, now) + self._interval
        if self._tpm:
            self._tokens -= min(float(tokens), float(self._tpm))


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return None
