"""Client-side rate limiting, one budget per model, so a run slows down before it is throttled.

Every attempt of every request, first sends and retries alike, takes its turn here. Turns are
fair: each request keeps the ticket it drew on its first attempt, and the oldest ticket waiting
always goes first, so a request sent back after a 429 is not overtaken by newer ones.

What a limiter knows, per model (Groq's limits are per model):
- the user's own budget (``--rpm``, ``--tpm``): requests paced evenly, tokens drawn from a
  bucket that refills at the per-minute rate;
- the provider's ``x-ratelimit-*`` headers: what remains of the request and token budgets and
  when they are full again; requests that would overdraw them wait;
- 429 answers: ``retry-after`` (or ``retry-after-ms``, or the "try again in 7.66s" of the
  message) pauses every request of the model, and then one request at a time goes until an
  answer gets through again.

A wait the provider imposes that is longer than ``max_wait`` is not slept through: the limiter
raises ``LongWait`` naming the limit, and the run stops so that it can be resumed later.
"""

from __future__ import annotations

import heapq
import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
# Groq and OpenAI name the limit in a 429's message: "... on requests per day (RPD): Limit
# 1000, Used 1000, Requested 1. Please try again in 1h2m3s."
_LIMIT_NAMED = re.compile(r"on (requests|tokens) per (minute|day|min)\b", re.IGNORECASE)
_TRY_AGAIN = re.compile(r"try again in ((?:\d+(?:\.\d+)?(?:ms|h|m|s))+)", re.IGNORECASE)
_LIMIT_REQUESTED = re.compile(r"Limit (\d+)(?:, Used \d+)?, Requested (\d+)", re.IGNORECASE)

DEFAULT_MAX_WAIT = 120.0


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


def describe_seconds(seconds: float) -> str:
    """A wait as a person reads it: ``"12 s"``, ``"4m05s"``, ``"1h02m"``."""
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def retry_after(headers: Mapping[str, str]) -> float | None:
    """The wait a provider asks for: ``retry-after-ms`` (Groq, OpenAI) before ``retry-after``."""
    millis = _number(headers.get("retry-after-ms"))
    if millis is not None and millis >= 0:
        return millis / 1000.0
    seconds = _number(headers.get("retry-after"))
    return seconds if seconds is not None and seconds >= 0 else None


@dataclass(frozen=True)
class Wait:
    """A wait in progress: which limit of which model, and for about how long."""

    limit: str  # "requests-per-day", "tokens-per-minute", "rate", "--rpm", ...
    model: str
    seconds: float

    def describe(self) -> str:
        seconds = describe_seconds(self.seconds)
        return f"waiting {seconds} for the {self.limit} limit of {self.model}"


class LongWait(Exception):
    """The provider asks for a wait longer than the run may wait: stop, resume later."""

    def __init__(self, wait: Wait, max_wait: float):
        self.wait = wait
        self.max_wait = max_wait
        self.resets_at = time.time() + wait.seconds
        if wait.limit == "refused":
            text = (
                f"the provider has refused every request to {wait.model} (HTTP 429) for longer "
                f"than the {describe_seconds(max_wait)} this run may wait (--max-wait)"
            )
        else:
            text = (
                f"the {wait.limit} limit for {wait.model} is used up; it resets in "
                f"{describe_seconds(wait.seconds)}, longer than the {describe_seconds(max_wait)} "
                "this run may wait (--max-wait)"
            )
        super().__init__(text)


class Cancelled(Exception):
    """The run is stopping: this request was never sent."""


class NeverFits(Exception):
    """One request needs more tokens than the whole per-minute budget: it can never be sent."""


@dataclass(frozen=True)
class Permit:
    """Leave to send one attempt; hand it back to ``done`` with what came back."""

    seq: int  # this model's sends so far, this one included
    tokens_before: float  # this model's tokens sent before this one
    tokens: int
    granted_at: float = 0.0  # the limiter's clock when the turn was granted (its schedule)


class Gate:
    """The requests on the wire at once, over every model (``--concurrency``).

    A limiter grants a turn only when its request can also take a place here, so ``--rpm``
    paces the moments requests go out, not the moments they were allowed to: a request that
    waited for a connection is not then sent together with others that waited too.
    """

    def __init__(self, size: int):
        self._free = max(size, 1)
        self._lock = threading.Lock()
        self._waiting: set[RateLimiter] = set()

    def try_enter(self, limiter: RateLimiter) -> bool:
        """Take a place if one is free; otherwise ``limiter`` is woken when one is."""
        with self._lock:
            if self._free > 0:
                self._free -= 1
                self._waiting.discard(limiter)
                return True
            self._waiting.add(limiter)
            return False

    def leave(self) -> None:
        with self._lock:
            self._free += 1
            waiting, self._waiting = list(self._waiting), set()
        for limiter in waiting:  # outside the gate's lock: the limiters take their own
            limiter.wake()


@dataclass(frozen=True)
class _Budget:
    """What a response's headers said remained of one budget, and when it is full again.

    ``remaining`` already takes off what was in flight when the answer came (the provider may
    or may not have counted it yet); sends after ``seq`` / ``tokens_before`` are taken off as
    they happen.
    """

    seq: int  # sends so far when the answer came
    tokens_before: float  # tokens sent so far when the answer came
    remaining: float
    refill: float  # per second (tokens); 0 for requests, which come back all at once
    cap: float  # the most it can hold (less what was in flight), when it refills
    seen_at: float
    full_at: float


class RateLimiter:
    """The turns of one model: fair, paced, and within what the provider says remains."""

    def __init__(
        self,
        model: str = "the model",
        rpm: float | None = None,
        tpm: float | None = None,
        *,
        requests_limit: str = "requests-per-day",
        max_wait: float = DEFAULT_MAX_WAIT,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
        cancelled: threading.Event | None = None,
        on_wait: Callable[[Wait | None], None] | None = None,
        tickets: Callable[[], int] | None = None,
    ):
        self.model = model
        self._interval = 60.0 / rpm if rpm else 0.0
        self._tpm = float(tpm) if tpm else None
        self._bucket = self._tpm or 0.0
        self._requests_limit = requests_limit
        self.max_wait = max_wait
        self._clock = clock
        self._sleep = sleep
        self._cancelled = cancelled or threading.Event()
        self._on_wait = on_wait
        self._tickets = tickets or itertools.count().__next__
        self._cond = threading.Condition()
        self.stopped: LongWait | None = None  # this model's limit outlasts the run: no more sends
        self._queue: list[int] = []
        now = clock()
        self._next_slot = now
        self._refilled_at = now
        self._sent = 0
        self._tokens_sent = 0.0
        self._in_flight: dict[int, int] = {}  # seq -> tokens of sends not answered yet
        self._requests: _Budget | None = None
        self._token_budget: _Budget | None = None
        self._token_limit: float | None = None  # learned from x-ratelimit-limit-tokens
        self._paused_until = 0.0
        self._pause_limit = "rate"
        self._refused_since: float | None = None  # first 429 since the last answer
        # While the budget is unknown (after a 429, or past a reset): how many sends may be in
        # flight; it doubles with each answer that gets through (None: no such bound).
        self._ramp: int | None = None
        self.waited = 0.0

    def ticket(self) -> int:
        """A request's place in the queue, drawn once on its first attempt."""
        return self._tickets()

    def acquire(
        self, tokens: int = 0, ticket: int | None = None, gate: Gate | None = None
    ) -> Permit:
        """Wait for this request's turn (and, with a ``gate``, its place on the wire: the
        caller leaves the gate when the attempt is over); raises LongWait, NeverFits or
        Cancelled."""
        if ticket is None:
            ticket = self.ticket()
        capacity = min(c for c in (self._tpm, self._token_limit, float("inf")) if c)
        if tokens > capacity:
            raise NeverFits(
                f"the request needs about {tokens} tokens (prompt and max_tokens), more than "
                f"the tokens-per-minute limit of {capacity:.0f} for {self.model}: it can never "
                "be sent; shorten the prompt or lower max_tokens"
            )
        with self._cond:
            heapq.heappush(self._queue, ticket)
            try:
                return self._wait_turn(ticket, tokens, gate)
            finally:
                if self._queue and ticket in self._queue:
                    self._queue.remove(ticket)
                    heapq.heapify(self._queue)
                self._cond.notify_all()

    def done(
        self, permit: Permit, status: int | None, headers: Mapping[str, str], text: str = ""
    ) -> None:
        """Learn from an attempt's answer: budgets from headers, a pause from a 429."""
        with self._cond:
            now = self._clock()
            self._in_flight.pop(permit.seq, None)
            self._learn_budgets(permit, headers, now)
            if status == 429:
                pause = retry_after(headers) or _try_again(text) or 1.0
                self._paused_until = max(self._paused_until, now + pause)
                self._pause_limit = limit_named(text) or "rate"
                self._ramp = 1
                if self._refused_since is None:
                    self._refused_since = now
            elif status is not None and status < 500:
                if self._ramp is not None:
                    self._ramp = None if self._ramp >= 32 else self._ramp * 2
                self._refused_since = None
            self._cond.notify_all()

    def stop(self, reason: LongWait) -> None:
        """This model sends nothing more in this run (its limit resets too late): every
        request waiting for a turn, and every later one, is not sent."""
        with self._cond:
            if self.stopped is None:
                self.stopped = reason
            self._cond.notify_all()

    def wake(self) -> None:
        """Look again at the head of the queue (a place on the wire came free)."""
        with self._cond:
            self._cond.notify_all()

    # ---- inside the lock

    def _wait_turn(self, ticket: int, tokens: int, gate: Gate | None) -> Permit:
        reported = False
        while True:
            if self._cancelled.is_set():
                raise Cancelled()
            if self.stopped is not None:
                raise self.stopped
            if self._queue[0] == ticket:
                wait = self._delay(tokens)
                if wait is None:
                    if gate is not None and not gate.try_enter(self):
                        self._cond.wait(0.25)  # woken when a place comes free
                        continue
                    if reported:
                        self._report(None)
                    return self._commit(tokens)
                if wait.limit == "refused" or (
                    wait.seconds > self.max_wait and wait.limit not in ("--rpm", "--tpm", "")
                ):
                    if self._in_flight:  # their answers may say more remains: wait for them
                        self._cond.wait(0.25)
                        continue
                    raise LongWait(wait, self.max_wait)
                if (wait.seconds >= 1.0 or reported) and wait.limit and self._on_wait:
                    self._report(wait)
                    reported = True
                if wait.limit:
                    self._pause(min(max(wait.seconds, 0.001), 0.25))
                else:  # woken by the probe's answer
                    self._cond.wait(0.25)
            else:
                self._cond.wait(0.25)

    def _report(self, wait: Wait | None) -> None:
        """Tell the progress display, with the lock let go: a slow terminal must not hold up
        the other requests' turns and answers."""
        if self._on_wait is None:
            return
        self._cond.release()
        try:
            self._on_wait(wait)
        finally:
            self._cond.acquire()

    def _pause(self, seconds: float) -> None:
        self.waited += seconds
        if self._sleep is None:
            self._cond.wait(seconds)
        else:  # a test's fake clock
            self._cond.release()
            try:
                self._sleep(seconds)
            finally:
                self._cond.acquire()

    def _delay(self, tokens: int) -> Wait | None:
        """How long the head of the queue must wait, and for which limit; None: send now."""
        now = self._clock()
        waits = []
        if self._paused_until > now:
            waits.append(Wait(self._pause_limit, self.model, self._paused_until - now))
        refused = self._refused_since
        if refused is not None and not self._in_flight and now - refused > self.max_wait:
            return Wait("refused", self.model, max(self._paused_until - now, 0.0))
        if self._interval and self._next_slot > now:
            waits.append(Wait("--rpm", self.model, self._next_slot - now))
        if self._tpm:
            self._refill(now)
            if self._bucket < tokens:
                waits.append(Wait("--tpm", self.model, (tokens - self._bucket) * 60.0 / self._tpm))
        waits += self._budget_waits(now, tokens)
        if not waits and self._ramp is not None and len(self._in_flight) >= self._ramp:
            # The budget is unknown (after a 429, or past a reset): one request at first, then
            # twice as many with each answer that gets through.
            waits.append(Wait("", self.model, 0.25))
        return max(waits, key=lambda w: w.seconds) if waits else None

    def _budget_waits(self, now: float, tokens: int) -> list[Wait]:
        waits = []
        budget = self._requests
        if budget is not None:
            if now >= budget.full_at:  # full again, as the provider said it would be
                self._requests = None
            elif self._available(budget, now) < 1:
                waits.append(Wait(self._requests_limit, self.model, budget.full_at - now))
        budget = self._token_budget
        if budget is not None and self._available(budget, now) < tokens:
            if budget.refill:
                level = budget.remaining + budget.refill * (now - budget.seen_at)
                if level < budget.cap:
                    seconds = (tokens - self._available(budget, now)) / budget.refill
                elif self._in_flight:  # full, and still short: wait for fresher answers
                    seconds = 0.25
                else:  # sends that were never counted (no answer): start afresh
                    self._token_budget = None
                    return waits
            elif now < budget.full_at:
                seconds = budget.full_at - now
            else:
                self._token_budget = None
                return waits
            waits.append(Wait("tokens-per-minute", self.model, seconds))
        return waits

    def _commit(self, tokens: int) -> Permit:
        now = self._clock()
        if self._interval:
            self._next_slot = max(self._next_slot, now) + self._interval
        if self._tpm:
            self._bucket -= min(float(tokens), self._tpm)
        self._sent += 1
        permit = Permit(self._sent, self._tokens_sent, tokens, now)
        self._tokens_sent += tokens
        self._in_flight[self._sent] = tokens
        return permit

    def _refill(self, now: float) -> None:
        assert self._tpm
        self._bucket = min(self._tpm, self._bucket + (now - self._refilled_at) * self._tpm / 60.0)
        self._refilled_at = now

    def _learn_budgets(self, permit: Permit, headers: Mapping[str, str], now: float) -> None:
        """Keep the most cautious of what answers said remains; answers may come out of order,
        so one that came while nothing else was in flight is the only one taken as exact."""
        remaining = _number(headers.get("x-ratelimit-remaining-requests"))
        reset = parse_reset(headers.get("x-ratelimit-reset-requests"))
        if remaining is not None:
            full_at = now + (reset if reset is not None else 1.0)
            remaining -= len(self._in_flight)
            budget = _Budget(self._sent, self._tokens_sent, remaining, 0.0, 0.0, now, full_at)
            if self._newer(self._requests, budget, now):
                self._requests = budget
            self._ramp = None
        limit = _number(headers.get("x-ratelimit-limit-tokens"))
        if limit:
            self._token_limit = limit
        remaining = _number(headers.get("x-ratelimit-remaining-tokens"))
        reset = parse_reset(headers.get("x-ratelimit-reset-tokens"))
        if remaining is not None:
            full_at = now + (reset if reset is not None else 1.0)
            refill = _refill_rate(remaining, limit, full_at - now)
            in_flight = sum(self._in_flight.values())
            cap = (limit or remaining) - in_flight
            budget = _Budget(
                self._sent, self._tokens_sent, remaining - in_flight, refill, cap, now, full_at
            )
            if self._newer(self._token_budget, budget, now):
                self._token_budget = budget
            self._ramp = None

    def _newer(self, current: _Budget | None, candidate: _Budget, now: float) -> bool:
        if current is None or not self._in_flight:
            return True
        if not current.refill and now >= current.full_at:
            return True
        return candidate.remaining <= self._available(current, now)

    def _available(self, budget: _Budget, now: float) -> float:
        """What remains of a budget now, by what its answer said and what was sent since.
        A refilling (token) budget gains evenly up to its cap; taking off what was sent after
        the cap is applied errs on the side of waiting."""
        if budget.refill:
            spent = self._tokens_sent - budget.tokens_before
            level = budget.remaining + budget.refill * (now - budget.seen_at)
            return min(level, budget.cap) - spent
        return budget.remaining - (self._sent - budget.seq)


def _refill_rate(remaining: float, limit: float | None, seconds: float) -> float:
    """Tokens per second a budget gains, if it refills evenly until it is full."""
    if not limit or seconds <= 0:
        return 0.0
    return max(limit - remaining, 0.0) / seconds


def limit_named(text: str) -> str | None:
    """The limit a 429's message names: ``"requests-per-day"``, ``"tokens-per-minute"``."""
    found = _LIMIT_NAMED.search(text or "")
    if not found:
        return None
    period = "minute" if found.group(2).lower().startswith("min") else found.group(2).lower()
    return f"{found.group(1).lower()}-per-{period}"


def never_fits(text: str) -> bool:
    """Whether a 413/429 message says the request alone is more than the limit."""
    found = _LIMIT_REQUESTED.search(text or "")
    return found is not None and int(found.group(2)) > int(found.group(1))


# OpenAI's 429 for an account without credit ("You exceeded your current quota, please check
# your plan and billing details"), https://platform.openai.com/docs/guides/error-codes (checked
# 2026-12-08): no wait makes it pass, so it is final, not a turn to wait for.
OUT_OF_CREDIT = "insufficient_quota"


def out_of_credit(text: str) -> bool:
    """Whether a 429's body says the account has no credit left (not a rate limit)."""
    try:
        body = json.loads(text or "")
    except ValueError:
        return False
    error = body.get("error") if isinstance(body, dict) else None
    return isinstance(error, dict) and OUT_OF_CREDIT in (error.get("code"), error.get("type"))


def _try_again(text: str) -> float | None:
    found = _TRY_AGAIN.search(text or "")
    return parse_reset(found.group(1)) if found else None


class Limits:
    """Every model's limiter for one run, with one queue order and one way to stop them all."""

    def __init__(
        self,
        rpm: float | None = None,
        tpm: float | None = None,
        max_wait: float = DEFAULT_MAX_WAIT,
        on_wait: Callable[[Wait | None], None] | None = None,
    ):
        self._rpm = rpm
        self._tpm = tpm
        self.max_wait = max_wait
        self._on_wait = on_wait
        self.cancelled = threading.Event()
        self._tickets = itertools.count().__next__
        self._limiters: dict[Any, RateLimiter] = {}
        self._lock = threading.Lock()

    def for_model(self, key: Any, model: str, requests_limit: str) -> RateLimiter:
        """The limiter of one model at one endpoint (created on first use)."""
        with self._lock:
            limiter = self._limiters.get(key)
            if limiter is None:
                limiter = RateLimiter(
                    model,
                    self._rpm,
                    self._tpm,
                    requests_limit=requests_limit,
                    max_wait=self.max_wait,
                    cancelled=self.cancelled,
                    on_wait=self._on_wait,
                    tickets=self._tickets,
                )
                self._limiters[key] = limiter
            return limiter

    def existing(self, key: Any) -> RateLimiter | None:
        """The limiter of ``key`` if a request of it was sent, else None."""
        with self._lock:
            return self._limiters.get(key)

    def stopped(self) -> list[LongWait]:
        """Why each model that stopped early stopped (its limit resets after ``max_wait``)."""
        with self._lock:
            limiters = list(self._limiters.values())
        return [limiter.stopped for limiter in limiters if limiter.stopped is not None]

    def cancel(self) -> None:
        """Make every waiting (and later) ``acquire`` raise Cancelled."""
        self.cancelled.set()
        for limiter in list(self._limiters.values()):
            with limiter._cond:
                limiter._cond.notify_all()


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return None
