"""A run's lifecycle (issue 28): one writer per run, signals that never throw answers away,
deadlines that hold, pacing by the moment a request goes out, a cache that waits its turn,
streams that let go of their connection, and a daily limit that stops only its own model.

Processes are real (``python -m runner``), signals are real, and every server is the local
test server; waits are bounded so that a regression fails instead of hanging.
"""

from __future__ import annotations

import gc
import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from helpers import (
    KEY,
    KEY_ENV,
    POSIX_SIGNALS,
    latest_run,
    read_records,
    run_args,
    saved_count,
    write_spec,
)
from provider_limits import ProviderLimits

from runner.errors import RunBusy
from runner.providers.endpoints import ProviderOverride, resolve_endpoint
from runner.runs import cache as cache_module
from runner.runs.cache import ResponseCache
from runner.runs.lock import LOCK_FILE, RunLock
from runner.send.ratelimit import Gate, LongWait, RateLimiter
from runner.send.retry import send_with_retries
from runner.send.stream_send import stream_once
from runner.send.transport import HttpClient, HttpResult, RetryPolicy, Timeouts

MODEL = "openai/gpt-oss-120b"


def runner(project: Path, *args: str, **popen: object) -> subprocess.Popen:
    env = {**os.environ, KEY_ENV: KEY}
    return subprocess.Popen(  # type: ignore[call-overload]
        [sys.executable, "-m", "runner", *args],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def wait_until(condition, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "waited too long"
        time.sleep(0.01)


def manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


# --- 28.1: one writer per run --------------------------------------------------------------


def test_a_second_writer_of_a_run_is_refused_while_the_first_runs(project, openai_server):
    for i in range(3):
        write_spec(project, f"s{i}")
    openai_server.latency = 2.0  # the second process starts well before the first ends
    first = runner(project, *run_args(openai_server.base_url), "-c", "1", "--quiet")
    wait_until(lambda: openai_server.count >= 1)
    run_dir = latest_run(project)
    # What a writer keeps half-written while it runs: a second process must not delete it.
    in_progress = run_dir / ".results.jsonl.inprogress.tmp"
    in_progress.write_text('{"id"')

    second = runner(project, "run", "--resume", str(run_dir), "--quiet")
    _, refused = second.communicate(timeout=30)

    assert second.returncode == 2, refused
    assert f"process {first.pid} (runner run) is writing the run directory" in refused
    assert in_progress.exists()
    in_progress.unlink()
    _, stderr = first.communicate(timeout=30)
    assert first.returncode == 0, stderr
    lines = (run_dir / "results.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["s0", "s1", "s2"]
    assert openai_server.count == 3
    assert not (run_dir / LOCK_FILE).exists()


def test_the_lock_is_the_only_writer_until_released_even_in_one_process(tmp_path):
    lock = RunLock.acquire(tmp_path, "runner run")
    with pytest.raises(RunBusy, match=f"process {os.getpid()} \\(runner run\\)"):
        RunLock.acquire(tmp_path, "runner batch fetch")
    lock.release()
    assert not (tmp_path / LOCK_FILE).exists()
    RunLock.acquire(tmp_path, "runner run --resume").release()


def test_a_lock_left_by_a_killed_writer_is_taken_over(project, tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from runner.runs.lock import RunLock; "
            "RunLock.acquire(Path(sys.argv[1]), 'holder'); print('held', flush=True); "
            "time.sleep(60)",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    with pytest.raises(RunBusy):
        RunLock.acquire(tmp_path, "runner run --resume")
    holder.kill()
    holder.wait()
    assert (tmp_path / LOCK_FILE).exists()  # a SIGKILL leaves the file, not the lock
    RunLock.acquire(tmp_path, "runner run --resume").release()


# --- 28.2: signals -----------------------------------------------------------------------------


@POSIX_SIGNALS
def test_a_second_ctrl_c_abandons_the_requests_in_flight_and_the_run_ends(project, openai_server):
    for i in range(4):
        write_spec(project, f"s{i}")
    openai_server.slow_seconds = 30.0  # far longer than the test may wait
    openai_server.plan("slow", "slow", "slow", "slow")
    process = runner(project, *run_args(openai_server.base_url), "-c", "4", "--quiet")
    wait_until(lambda: openai_server.count == 4)
    process.send_signal(signal.SIGINT)
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=20)

    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    run_dir = latest_run(project)
    finished = manifest(run_dir)
    assert finished["status"] == "incomplete" and finished["results"] == "final"
    assert finished["counts"]["not_sent"] == 4
    assert finished["stopped"]["signal"] == "SIGINT"
    assert not (run_dir / LOCK_FILE).exists()

    resumed = runner(project, "run", "--resume", str(run_dir), "--quiet")
    _, stderr = resumed.communicate(timeout=30)
    assert resumed.returncode == 0, stderr
    assert sorted(read_records(run_dir)) == ["s0", "s1", "s2", "s3"]


@POSIX_SIGNALS
def test_a_sigterm_ends_a_run_stuck_in_a_request_after_its_grace(project, openai_server):
    write_spec(project, "stuck")
    openai_server.slow_seconds = 60.0
    openai_server.plan("slow")
    process = runner(project, *run_args(openai_server.base_url), "--quiet")
    wait_until(lambda: openai_server.count == 1)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=20)

    assert process.returncode == 143, stderr
    finished = manifest(latest_run(project))
    assert finished["counts"]["not_sent"] == 1 and finished["stopped"]["signal"] == "SIGTERM"


@POSIX_SIGNALS
def test_after_a_sigterm_answers_and_failures_are_counted_apart(project, openai_server):
    for i in range(3):
        write_spec(project, f"s{i}")
    openai_server.plan("400", marker="(s0)")
    openai_server.plan("400", marker="(s1)")
    openai_server.slow_seconds = 1.5  # answered within the SIGTERM's grace
    openai_server.plan("slow", marker="(s2)")
    process = runner(project, *run_args(openai_server.base_url), "-c", "3", "--quiet")
    wait_until(lambda: saved_count(project) == 2 and openai_server.count == 3)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=20)

    assert process.returncode == 143, stderr
    assert "terminated (SIGTERM): 1 answer and 2 failed requests saved in runs/" in stderr


@POSIX_SIGNALS
def test_answers_in_flight_at_the_first_ctrl_c_are_awaited_and_saved(project, openai_server):
    for i in range(2):
        write_spec(project, f"s{i}")
    openai_server.latency = 1.0
    process = runner(project, *run_args(openai_server.base_url), "-c", "2", "--quiet")
    wait_until(lambda: openai_server.count == 2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)

    assert process.returncode == 130, stderr
    records = read_records(latest_run(project))
    assert sorted(records) == ["s0", "s1"]
    assert all(r["status"] == "ok" for r in records.values())


def test_the_meaning_of_a_second_signal_is_in_the_help(run_cli):
    help_text = " ".join(run_cli("run", "--help").output.split())
    assert "second Ctrl-C" in help_text and "SIGTERM" in help_text


# --- 28.8: a failed save still finishes the run --------------------------------------------


@pytest.mark.skipif(os.name == "nt", reason="fills the disk with RLIMIT_FSIZE, which Windows lacks")
def test_a_record_that_cannot_be_saved_stops_the_run_and_still_finishes_the_manifest(
    project, openai_server
):
    for i in range(12):
        write_spec(project, f"s{i:02}")

    def small_files() -> None:  # results.jsonl cannot grow past a few records
        import resource

        resource.setrlimit(resource.RLIMIT_FSIZE, (5_000, 5_000))

    process = runner(
        project,
        *run_args(openai_server.base_url),
        "-c",
        "12",
        "--rpm",
        "30",  # one request every 2 s: the requests not sent yet wait at the limiter
        "--no-cache",
        "--quiet",
        preexec_fn=small_files,
    )
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == 1, stderr
    assert "cannot save records" in stderr and "Traceback" not in stderr
    finished = manifest(latest_run(project))
    assert finished["status"] == "incomplete" and finished["results"] == "final"
    assert openai_server.count < 12  # the waiting requests gave up when the save failed


# --- 28.3: deadlines -----------------------------------------------------------------------


def test_an_answer_dripping_byte_by_byte_ends_at_the_timeout(project, openai_server, run_cli):
    write_spec(project, "alpha")
    openai_server.plan("drip")  # about 600 bytes, one every 0.2 s: two minutes in all
    os.environ[KEY_ENV] = KEY
    try:
        result = run_cli(*run_args(openai_server.base_url), "--timeout", "1", "--retries", "0")
    finally:
        del os.environ[KEY_ENV]

    assert result.exit_code == 1
    (record,) = read_records(latest_run(project)).values()
    assert record["error"]["limit"] == "--timeout"
    assert "no whole answer within 1 s" in record["error"]["message"]
    assert record["latency_ms"] < 30_000  # not the two minutes the server would take


# --- 28.7: a failed stream lets go of its connection ----------------------------------------


def test_a_stream_that_failed_closes_its_connection_without_waiting_for_gc(openai_server):
    openai_server.plan("stream_error_then_wait")
    os.environ[KEY_ENV] = KEY
    endpoint = resolve_endpoint(
        None, ProviderOverride(base_url=openai_server.base_url, api_key_env=KEY_ENV)
    )
    body = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "Hi"}]}
    client = HttpClient(Timeouts())
    gc.disable()
    try:
        os.environ[KEY_ENV] = KEY
        answer = stream_once(client, endpoint, json.dumps(body).encode(), Timeouts())
        assert answer.failure is not None and answer.failure.kind == "provider"
        # The answer (and its failure's traceback) is still held here.
        assert openai_server.closed_by_client.wait(5)
    finally:
        gc.enable()
        os.environ.pop(KEY_ENV, None)
        client.close()


# --- 28.4 and 27.13: pacing, on the limiter's own clock --------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


def test_rpm_turns_are_one_interval_apart_on_the_limiters_schedule():
    clock = FakeClock()
    limiter = RateLimiter("m", rpm=600, clock=clock, sleep=clock.sleep)
    granted: list[float] = []
    threads = [
        threading.Thread(target=lambda: granted.append(limiter.acquire().granted_at))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    gaps = [round(b - a, 6) for a, b in itertools.pairwise(sorted(granted))]
    assert gaps == [0.1, 0.1, 0.1]


def test_an_rpm_turn_is_granted_when_the_request_can_go_out_not_before():
    clock = FakeClock()
    limiter = RateLimiter("m", rpm=600, clock=clock, sleep=clock.sleep)
    gate = Gate(1)
    busy = RateLimiter("slow model")
    assert gate.try_enter(busy)  # a slow model's request holds the only connection
    granted: list[float] = []

    def send_one() -> None:
        permit = limiter.acquire(gate=gate)
        granted.append(permit.granted_at)
        gate.leave()

    waiting = [threading.Thread(target=send_one) for _ in range(2)]
    for thread in waiting:
        thread.start()
    time.sleep(0.3)
    clock.sleep(1.0)  # ten intervals pass while the connection is busy
    assert granted == []
    opened_at = clock.now
    gate.leave()
    for thread in waiting:
        thread.join(10)

    assert granted[0] >= opened_at
    assert round(granted[1] - granted[0], 6) >= 0.1  # not sent together


# --- 28.8: the limiter -----------------------------------------------------------------------


def test_an_attempt_that_raises_gives_its_permit_back():
    limiter = RateLimiter("m", max_wait=0.5)

    def broken() -> HttpResult:
        raise RuntimeError("a bug in sending")

    with pytest.raises(RuntimeError):
        send_with_retries(
            broken, limiter, 0, RetryPolicy(), threading.Event(), lambda r: r, lambda r: False
        )
    # A 429 asking for a long wait: with a permit lost in flight, the limiter would wait for
    # its answer forever instead of stopping the model.
    permit = limiter.acquire()
    limiter.done(permit, 429, {"retry-after": "100"})
    outcome: list[BaseException] = []

    def next_turn() -> None:
        try:
            limiter.acquire()
        except LongWait as exc:
            outcome.append(exc)

    thread = threading.Thread(target=next_turn, daemon=True)
    thread.start()
    thread.join(5)
    assert outcome and isinstance(outcome[0], LongWait)


def test_the_progress_display_is_told_of_a_wait_without_the_limiters_lock():
    clock = FakeClock()
    answered = threading.Event()
    first: list = []

    def on_wait(wait) -> None:  # a slow terminal: meanwhile another request's answer comes
        if wait is not None and not answered.is_set():
            helper = threading.Thread(
                target=lambda: (limiter.done(first[0], 200, {}), answered.set())
            )
            helper.start()
            helper.join(5)

    limiter = RateLimiter("m", rpm=30, clock=clock, sleep=clock.sleep, on_wait=on_wait)
    first.append(limiter.acquire())
    limiter.acquire()  # waits 2 s for --rpm: reported to on_wait
    assert answered.is_set()


# --- 28.5: the cache -------------------------------------------------------------------------


def writer_holding(path: Path, seconds: float) -> sqlite3.Connection:
    """Another connection in the middle of a write transaction, committed after ``seconds``."""
    other = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    other.execute(
        "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, url TEXT NOT NULL, "
        "status INTEGER NOT NULL, response TEXT NOT NULL, created_at TEXT)"
    )
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO responses VALUES ('k-other', 'u', 200, '{}', 'now')")
    threading.Timer(seconds, lambda: other.execute("COMMIT")).start()
    return other


def test_a_new_cache_being_written_by_another_run_is_waited_for(tmp_path):
    path = tmp_path / "cache.sqlite"
    other = writer_holding(path, 0.5)
    responses = ResponseCache(path)  # switching to WAL answered "locked" at once before
    assert responses.get("k-other") is not None
    responses.close()
    other.close()


def test_a_failed_cache_write_is_counted_and_said(tmp_path, monkeypatch):
    path = tmp_path / "cache.sqlite"
    ResponseCache(path).close()
    monkeypatch.setattr(cache_module, "BUSY_SECONDS", 0.2)
    responses = ResponseCache(path)
    other = writer_holding(path, 2.0)
    assert responses.put("k", "u", 200, "{}") is False
    assert responses.write_failures == 1
    assert "1 answer could not be kept in the response cache" in (responses.write_problem or "")
    time.sleep(2.2)
    responses.close()
    other.close()


def test_a_write_waiting_for_the_lock_does_not_hold_up_a_read(tmp_path, monkeypatch):
    path = tmp_path / "cache.sqlite"
    monkeypatch.setattr(cache_module, "BUSY_SECONDS", 3.0)
    responses = ResponseCache(path)
    responses.put("k0", "u", 200, "{}")
    other = writer_holding(path, 1.5)
    writing = threading.Event()
    written = threading.Event()

    def write() -> None:
        writing.set()
        responses.put("k1", "u", 200, "{}")
        written.set()

    threading.Thread(target=write).start()
    writing.wait(5)
    time.sleep(0.1)
    assert responses.get("k0") is not None
    assert not written.is_set()  # the read did not wait behind the write
    assert written.wait(10)
    responses.close()
    other.close()


def test_clear_counts_what_it_deletes_in_one_transaction(tmp_path):
    path = tmp_path / "cache.sqlite"
    responses = ResponseCache(path)
    responses.put("k0", "u", 200, "{}")
    other = writer_holding(path, 0.5)  # a row being added while clear starts
    assert responses.clear() == 2
    assert len(responses) == 0
    responses.close()
    other.close()


# --- 27.1: a daily limit stops only its own model -------------------------------------------


def test_a_daily_limit_of_one_model_stops_only_that_models_requests(
    project, openai_server, run_cli, monkeypatch
):
    spec = {
        "version": 1,
        "name": "pair",
        "model": MODEL,
        "messages": [{"role": "user", "content": "Say hello ({{ n }})."}],
        "cases": [{"id": f"c{i}", "n": i} for i in range(8)],
        "matrix": {"model": ["limited-model", "free-model"]},
    }
    (project / "specs").mkdir()
    (project / "specs" / "pair.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    openai_server.provider_limits = ProviderLimits(per_model={"limited-model": {"rpd": (3, 600.0)}})
    monkeypatch.setenv(KEY_ENV, KEY)

    result = run_cli(*run_args(openai_server.base_url), "-c", "2", "--max-wait", "0.5")

    assert result.exit_code == 75, result.stderr
    assert "the requests-per-day limit for limited-model is used up" in result.stderr
    assert "(--max-wait) (at 20" in result.stderr  # the reset's UTC time, for the resume hint
    records = read_records(latest_run(project))
    free = [r for r in records.values() if r["matrix"]["model"] == "free-model"]
    limited = [r for r in records.values() if r["matrix"]["model"] == "limited-model"]
    assert len(free) == 8 and all(r["status"] == "ok" for r in free)
    assert len(limited) == 3
    stopped = manifest(latest_run(project))["stopped"]
    (model,) = stopped["models"]
    assert model["model"] == "limited-model" and model["limit"] == "requests-per-day"
    assert model["resets_at"].endswith("Z")


def test_runner_score_of_a_run_another_process_writes_is_refused(project, run_cli):
    write_spec(project, "alpha")
    assert run_cli("run", "specs", "--provider", "offline", "--quiet").exit_code == 0
    run_dir = latest_run(project)
    held = RunLock.acquire(run_dir, "runner run --resume")
    try:
        scored = run_cli("score", run_dir)
    finally:
        held.release()

    assert scored.exit_code == 2, scored.output
    assert "(runner run --resume) is writing the run directory" in scored.output
    assert run_cli("score", run_dir).exit_code == 0
