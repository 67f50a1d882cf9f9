"""Groq-style rate limits for the test server, per model and scaled down in time.

Groq applies, per model, requests per minute (only a 429 says so: no headers), requests per
day and tokens per minute (both reported on every answer in ``x-ratelimit-*`` headers), and
names the limit in each 429's message. Here a "minute" and a "day" are as many seconds as a
test wants, so a day's budget can run out and come back within a test.

    limits = ProviderLimits(rpm=(100, 0.5), rpd=(40, 3.0), tpm=(6000, 1.0))
    server.provider_limits = limits                  # see tests/openai_server.py
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any


def groq_duration(seconds: float) -> str:
    """A reset time the way Groq writes it: ``"7.66s"``, ``"2m59.56s"``, ``"1h2m3s"``."""
    seconds = max(seconds, 0.0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{int(hours)}h" if hours else ""
    text += f"{int(minutes)}m" if minutes or hours else ""
    return text + f"{round(secs, 3):g}s"


def requested_tokens(body: dict[str, Any]) -> int:
    """What a request counts against the token budget: its prompt and its completion limit."""
    chars = sum(len(str(m.get("content") or "")) for m in body.get("messages") or [])
    limit = body.get("max_completion_tokens") or body.get("max_tokens") or 0
    return math.ceil(chars / 4) + int(limit)


@dataclass
class ModelLimits:
    """One model's budgets and what has been spent of them."""

    rpm: tuple[int, float] | None
    rpd: tuple[int, float] | None
    tpm: tuple[int, float] | None
    minute: deque[float] = field(default_factory=deque)
    day_started: float | None = None
    day_used: int = 0
    tokens: float = 0.0
    tokens_at: float = 0.0


@dataclass(frozen=True)
class Refusal:
    limit: str  # "RPD", "RPM", "TPM"
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


class ProviderLimits:
    """The limits of every model; ``admit`` spends a request's share or says why not."""

    def __init__(
        self,
        rpm: tuple[int, float] | None = None,
        rpd: tuple[int, float] | None = None,
        tpm: tuple[int, float] | None = None,
        per_model: dict[str, dict[str, tuple[int, float]]] | None = None,
    ):
        self._default = {"rpm": rpm, "rpd": rpd, "tpm": tpm}
        self._per_model = per_model or {}
        self._models: dict[str, ModelLimits] = {}
        self._lock = threading.Lock()
        self.refused: dict[str, int] = {}  # 429s and 413s by limit name
        self.admitted: dict[str, list[float]] = {}  # when each model's requests were let in

    def admit(self, body: dict[str, Any]) -> tuple[Refusal | None, dict[str, str]]:
        """Spend one request of ``body``'s model: (None, headers) or (a refusal, headers)."""
        model = str(body.get("model"))
        with self._lock:
            limits = self._models.get(model)
            if limits is None:
                limits = ModelLimits(**{**self._default, **self._per_model.get(model, {})})
                self._models[model] = limits
            now = time.monotonic()
            refusal = self._check(limits, model, requested_tokens(body), now)
            headers = self._headers(limits, now)
            if refusal is not None:
                self.refused[refusal.limit] = self.refused.get(refusal.limit, 0) + 1
                headers = {**headers, **refusal.headers}
                return Refusal(refusal.limit, refusal.status, refusal.body, headers), headers
            self.admitted.setdefault(model, []).append(now)
            return None, headers

    def _check(self, limits: ModelLimits, model: str, tokens: int, now: float) -> Refusal | None:
        if limits.rpd is not None:
            allowed, day = limits.rpd
            if limits.day_started is None or now >= limits.day_started + day:
                limits.day_started, limits.day_used = now, 0
            if limits.day_used >= allowed:
                wait = limits.day_started + day - now
                return _refusal(429, model, "requests per day (RPD)", allowed, allowed, 1, wait)
        if limits.rpm is not None:
            allowed, window = limits.rpm
            while limits.minute and limits.minute[0] <= now - window:
                limits.minute.popleft()
            if len(limits.minute) >= allowed:
                wait = limits.minute[0] + window - now
                return _refusal(429, model, "requests per minute (RPM)", allowed, allowed, 1, wait)
        if limits.tpm is not None:
            capacity, window = limits.tpm
            if tokens > capacity:
                return _too_large(model, capacity, tokens)
            self._refill(limits, now)
            if limits.tokens < tokens:
                wait = (tokens - limits.tokens) * window / capacity
                used = round(capacity - limits.tokens)
                return _refusal(429, model, "tokens per minute (TPM)", capacity, used, tokens, wait)
            limits.tokens -= tokens
        if limits.rpd is not None:
            limits.day_used += 1
        if limits.rpm is not None:
            limits.minute.append(now)
        return None

    def _refill(self, limits: ModelLimits, now: float) -> None:
        assert limits.tpm is not None
        capacity, window = limits.tpm
        if limits.tokens_at == 0.0:
            limits.tokens, limits.tokens_at = float(capacity), now
        limits.tokens = min(capacity, limits.tokens + (now - limits.tokens_at) * capacity / window)
        limits.tokens_at = now

    def _headers(self, limits: ModelLimits, now: float) -> dict[str, str]:
        """Groq's headers: the per-day request budget and the per-minute token budget."""
        headers = {}
        if limits.rpd is not None and limits.day_started is not None:
            allowed, day = limits.rpd
            headers["x-ratelimit-limit-requests"] = str(allowed)
            headers["x-ratelimit-remaining-requests"] = str(max(allowed - limits.day_used, 0))
            headers["x-ratelimit-reset-requests"] = groq_duration(limits.day_started + day - now)
        if limits.tpm is not None and limits.tokens_at:
            capacity, window = limits.tpm
            headers["x-ratelimit-limit-tokens"] = str(capacity)
            headers["x-ratelimit-remaining-tokens"] = str(int(limits.tokens))
            full = (capacity - limits.tokens) * window / capacity
            headers["x-ratelimit-reset-tokens"] = groq_duration(full)
        return headers


def _refusal(
    status: int, model: str, limit: str, allowed: int, used: int, requested: int, wait: float
) -> Refusal:
    kind = "tokens" if "tokens" in limit else "requests"
    message = (
        f"Rate limit reached for model `{model}` in organization `org_test` service tier "
        f"`on_demand` on {limit}: Limit {allowed}, Used {used}, Requested {requested}. "
        f"Please try again in {groq_duration(wait)}. Need more {kind}? Upgrade to Dev Tier "
        "today at https://console.groq.com/settings/billing"
    )
    headers = {
        "retry-after": str(max(math.ceil(wait), 1)),
        "retry-after-ms": str(math.ceil(wait * 1000)),
    }
    return Refusal(limit[-4:-1], status, _error(message, kind), headers)


def _too_large(model: str, capacity: int, tokens: int) -> Refusal:
    message = (
        f"Request too large for model `{model}` in organization `org_test` service tier "
        f"`on_demand` on tokens per minute (TPM): Limit {capacity}, Requested {tokens}, please "
        "reduce your message size and try again. Need more tokens? Upgrade to Dev Tier today."
    )
    return Refusal("TPM", 413, _error(message, "tokens"), {})


def _error(message: str, kind: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "code": "rate_limit_exceeded"}}
