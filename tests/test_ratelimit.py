"""Client-side pacing, fair turns and header feedback, mostly on a fake clock (no real waiting)."""

import threading
import time

import pytest

from runner.send.ratelimit import (
    Cancelled,
    Limits,
    LongWait,
    NeverFits,
    RateLimiter,
    describe_seconds,
    limit_named,
    never_fits,
    parse_reset,
)

GROQ_RPD = (
    "Rate limit reached for model `openai/gpt-oss-120b` in organization `org_x` service tier "
    "`on_demand` on requests per day (RPD): Limit 1000, Used 1000, Requested 1. Please try "
    "again in 1h2m3s. Need more requests? Upgrade to Dev Tier today."
)
GROQ_TPM = (
    "Rate limit reached for model `openai/gpt-oss-120b` in organization `org_x` service tier "
    "`on_demand` on tokens per minute (TPM): Limit 6000, Used 5420, Requested 757. Please try "
    "again in 1.5s."
)


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("7.66s", 7.66), ("2m59.56s", 179.56), ("1h2m", 3720.0), ("250ms", 0.25), ("3", 3.0)],
)
def test_parse_reset(text, seconds):
    assert parse_reset(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", [None, "", "soon", "5 s", "1x"])
def test_parse_reset_rejects_garbage(text):
    assert parse_reset(text) is None


@pytest.mark.parametrize(
    ("seconds", "text"), [(3.21, "3.2 s"), (12.4, "12 s"), (245, "4m05s"), (3723, "1h02m")]
)
def test_waits_read_like_a_person_writes_them(seconds, text):
    assert describe_seconds(seconds) == text


def test_the_limit_is_named_from_groq_messages():
    assert limit_named(GROQ_RPD) == "requests-per-day"
    assert limit_named(GROQ_TPM) == "tokens-per-minute"
    assert limit_named("Please slow down") is None
    assert never_fits("on tokens per minute (TPM): Limit 6000, Requested 8278, please reduce")
    assert not never_fits(GROQ_TPM)


def limiter(clock: FakeClock, **kwargs) -> RateLimiter:
    return RateLimiter("m", clock=clock, sleep=clock.sleep, **kwargs)


def elapsed(clock: FakeClock) -> float:
    return clock.now - 1000.0


def test_rpm_paces_requests_evenly():
    clock = FakeClock()
    rate = limiter(clock, rpm=120)
    times = []
    for _ in range(5):
        rate.acquire()
        times.append(elapsed(clock))
    assert times == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0])


def test_tpm_bucket_waits_for_refill():
    clock = FakeClock()
    rate = limiter(clock, tpm=600)
    rate.acquire(600)
    assert elapsed(clock) == 0.0
    rate.acquire(300)
    assert elapsed(clock) == pytest.approx(30.0, abs=0.3)


def test_no_limits_never_waits():
    clock = FakeClock()
    rate = limiter(clock)
    for _ in range(100):
        rate.acquire(10_000)
    assert clock.now == 1000.0


def test_exhausted_request_budget_pauses_until_reset():
    clock = FakeClock()
    rate = limiter(clock)
    permit = rate.acquire()
    headers = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "2.5s"}
    rate.done(permit, 200, headers)
    rate.acquire()
    assert elapsed(clock) == pytest.approx(2.5, abs=0.3)


def test_requests_sent_after_the_answer_count_against_what_remains():
    clock = FakeClock()
    rate = limiter(clock)
    first = rate.acquire()
    rate.acquire()  # in flight when the first answer says 2 remain
    headers = {"x-ratelimit-remaining-requests": "2", "x-ratelimit-reset-requests": "5s"}
    rate.done(first, 200, headers)
    rate.acquire()
    assert elapsed(clock) == 0.0
    rate.acquire()
    assert elapsed(clock) == pytest.approx(5.0, abs=0.3)


def test_token_budget_refills_evenly_until_its_reset():
    clock = FakeClock()
    rate = limiter(clock)
    permit = rate.acquire(100)
    headers = {
        "x-ratelimit-limit-tokens": "1000",
        "x-ratelimit-remaining-tokens": "100",
        "x-ratelimit-reset-tokens": "9s",
    }
    rate.done(permit, 200, headers)
    rate.acquire(500)  # 100 left, 100 more a second: 4 s
    assert elapsed(clock) == pytest.approx(4.0, abs=0.3)


def test_a_429_pauses_for_retry_after_ms_before_retry_after():
    clock = FakeClock()
    rate = limiter(clock)
    rate.done(rate.acquire(), 429, {"retry-after-ms": "1500", "retry-after": "2"})
    rate.acquire()
    assert elapsed(clock) == pytest.approx(1.5, abs=0.3)


def test_a_429_without_headers_waits_as_its_message_says():
    clock = FakeClock()
    rate = limiter(clock)
    rate.done(rate.acquire(), 429, {}, GROQ_TPM)
    rate.acquire()
    assert elapsed(clock) == pytest.approx(1.5, abs=0.3)


def test_a_wait_longer_than_max_wait_raises_naming_the_limit():
    clock = FakeClock()
    rate = limiter(clock, max_wait=60)
    rate.done(rate.acquire(), 429, {"retry-after": "3723"}, GROQ_RPD)
    with pytest.raises(LongWait) as raised:
        rate.acquire()
    assert str(raised.value).startswith(
        "the requests-per-day limit for m is used up; it resets in 1h02m"
    )
    assert elapsed(clock) < 1.0


def test_a_request_bigger_than_the_token_limit_never_waits():
    clock = FakeClock()
    rate = limiter(clock, tpm=1000)
    with pytest.raises(NeverFits, match="can never be sent"):
        rate.acquire(1001)
    learned = limiter(clock)
    permit = learned.acquire(10)
    learned.done(permit, 200, {"x-ratelimit-limit-tokens": "500"})
    with pytest.raises(NeverFits, match="limit of 500 for m"):
        learned.acquire(501)


def test_after_a_429_one_request_at_a_time_until_an_answer_gets_through():
    clock = FakeClock()
    rate = limiter(clock)
    rate.done(rate.acquire(), 429, {"retry-after": "1"})
    probe = rate.acquire()
    blocked = threading.Thread(target=rate.acquire)
    blocked.start()
    blocked.join(0.3)
    assert blocked.is_alive()  # waits for the probe's answer
    rate.done(probe, 200, {})
    blocked.join(5)
    assert not blocked.is_alive()


def test_the_oldest_ticket_goes_first():
    rate = RateLimiter("m")
    rate.done(rate.acquire(), 429, {"retry-after": "0.3"})  # everyone waits 0.3 s
    tickets = [rate.ticket() for _ in range(6)]
    order: list[int] = []

    def take(ticket: int) -> None:
        permit = rate.acquire(0, ticket)
        order.append(ticket)
        rate.done(permit, 200, {})

    threads = [threading.Thread(target=take, args=(t,)) for t in reversed(tickets)]
    for thread in threads:
        thread.start()
        time.sleep(0.01)
    for thread in threads:
        thread.join(5)
    assert order == tickets


def test_models_have_separate_budgets():
    limits = Limits()
    a = limits.for_model("a", "model-a", "requests-per-day")
    b = limits.for_model("b", "model-b", "requests-per-day")
    a.done(a.acquire(), 429, {"retry-after": "30"})
    started = time.monotonic()
    b.acquire()
    assert time.monotonic() - started < 1.0
    assert limits.for_model("a", "model-a", "requests-per-day") is a


def test_cancel_wakes_every_waiting_request():
    limits = Limits()
    rate = limits.for_model("a", "m", "requests-per-day")
    rate.done(rate.acquire(), 429, {"retry-after": "30"})
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            rate.acquire()
        except Cancelled as exc:
            errors.append(exc)

    thread = threading.Thread(target=wait)
    thread.start()
    limits.cancel()
    thread.join(5)
    assert not thread.is_alive() and len(errors) == 1
