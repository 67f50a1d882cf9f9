"""Send one request until it is answered, every attempt taking its turn at the rate limiter.

A 429 pauses the request's model at the limiter and the request goes back into the queue with
the ticket of its first attempt, so it is sent again before any newer request: under any
contention a rate-limited run ends with every request answered. 5xx answers and dropped
connections are retried ``RetryPolicy.retries`` times after an exponential backoff (or the
``retry-after`` the provider gave), also through the limiter. Other 4xx answers, and a request
bigger than the whole token budget, or a 429 that says the account has no credit left, are
final at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

from runner.send.ratelimit import (
    Cancelled,
    Gate,
    RateLimiter,
    never_fits,
    out_of_credit,
    retry_after,
)
from runner.send.transport import HttpResult, RetryPolicy, retryable

A = TypeVar("A")  # what one attempt gives: an HttpResult, or a streamed answer


def send_with_retries(
    send_once: Callable[[], A],
    limiter: RateLimiter,
    tokens: int,
    policy: RetryPolicy,
    stop: threading.Event,
    result_of: Callable[[A], HttpResult],
    may_retry: Callable[[A], bool],
    gate: Gate | None = None,
    on_retry: Callable[[HttpResult], None] | None = None,
) -> tuple[A, int]:
    """The final answer of one request and how many attempts were sent.

    ``send_once`` sends one attempt (a whole answer, or a stream), ``result_of`` gives its HTTP
    result and ``may_retry`` whether sending it again may help. Raises LongWait when the
    provider asks for a wait longer than the run allows, NeverFits when the request can never
    be within the token limit, and Cancelled when the run stops while the request waits (it
    then counts as not sent). With a ``gate``, each attempt also waits for its place on the
    wire before its turn is granted, and leaves it when it is over. ``on_retry`` hears of
    each failed attempt that is to be sent again (a progress display shows it: a run whose
    every request fails and is retried is not silent).
    """
    ticket = limiter.ticket()
    attempts = retries = 0
    while True:
        permit = limiter.acquire(tokens, ticket, gate)
        try:
            answer = send_once()
        except BaseException:
            limiter.done(permit, None, {})  # no answer: the limiter must not wait for one
            raise
        finally:
            if gate is not None:
                gate.leave()
        result = result_of(answer)
        attempts += 1
        limiter.done(permit, result.status, result.headers, result.text or "")
        text = result.text or ""
        if result.status == 429 and not never_fits(text) and not out_of_credit(text):
            continue  # the limiter paused the model; this request keeps its place
        if retries >= policy.retries or not may_retry(answer):
            return answer, attempts
        retries += 1
        if on_retry is not None:
            on_retry(result)
        wait = retry_after(result.headers)
        wait = min(policy.backoff(retries) if wait is None else wait, limiter.max_wait)
        if stop.wait(wait):
            raise Cancelled()


def send_whole_with_retries(
    send_once: Callable[[], HttpResult],
    limiter: RateLimiter,
    tokens: int,
    policy: RetryPolicy,
    stop: threading.Event,
    gate: Gate | None = None,
    on_retry: Callable[[HttpResult], None] | None = None,
) -> HttpResult:
    """``send_with_retries`` for a whole (not streamed) answer; ``attempts`` set in it."""
    result, attempts = send_with_retries(
        send_once, limiter, tokens, policy, stop, lambda r: r, retryable, gate, on_retry
    )
    return replace(result, attempts=attempts)
