"""Client-side pacing and header feedback, on a fake clock (no real waiting)."""

import pytest

from runner.ratelimit import RateLimiter, parse_reset


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


def limiter(clock: FakeClock, **kwargs) -> RateLimiter:
    return RateLimiter(clock=clock, sleep=clock.sleep, **kwargs)


def test_rpm_paces_requests_evenly():
    clock = FakeClock()
    rate = limiter(clock, rpm=120)
    times = []
    for _ in range(5):
        rate.acquire()
        times.append(clock.now - 1000.0)
    assert times == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0])


def test_tpm_bucket_waits_for_refill():
    clock = FakeClock()
    rate = limiter(clock, tpm=600)
    rate.acquire(600)
    assert clock.now == 1000.0
    rate.acquire(300)
    assert clock.now - 1000.0 == pytest.approx(30.0)


def test_no_limits_never_waits():
    clock = FakeClock()
    rate = limiter(clock)
    for _ in range(100):
        rate.acquire(10_000)
    assert clock.now == 1000.0


def test_exhausted_request_budget_pauses_until_reset():
    clock = FakeClock()
    rate = limiter(clock)
    rate.observe({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "2.5s"})
    rate.acquire()
    assert clock.now - 1000.0 == pytest.approx(2.5)


def test_exhausted_token_budget_pauses_until_reset():
    clock = FakeClock()
    rate = limiter(clock)
    rate.observe({"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "1m"})
    rate.acquire()
    assert clock.now - 1000.0 == pytest.approx(60.0)


def test_retry_after_pauses_everyone():
    clock = FakeClock()
    rate = limiter(clock)
    rate.observe({"retry-after": "4"})
    rate.acquire()
    assert clock.now - 1000.0 == pytest.approx(4.0)


def test_plenty_remaining_does_not_pause():
    clock = FakeClock()
    rate = limiter(clock)
    rate.observe({"x-ratelimit-remaining-requests": "14000", "x-ratelimit-reset-requests": "9s"})
    rate.acquire()
    assert clock.now == 1000.0
