"""Crash safety: `runner run` killed with SIGKILL at random moments, then resumed.

The runner runs as a subprocess (it must be killable) against the local server in this process,
which answers after a small latency so a kill lands while requests are in flight. After each
kill, ``runner run --resume`` must finish the run with exactly one whole record per spec, and
must not send again any request whose record was saved before the kill.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import read_records

from runner.runs.store import RunStore

KEY_ENV = "RUNNER_TEST_KEY"
KEY = "sk-test-crash-39281706"
SPECS = 30
TRIALS = 20
PARALLEL = 5
LATENCY = 0.03
# A run of 30 specs at concurrency 4 takes about 8 x LATENCY; kills land anywhere in it (or
# just after it ended, which must also resume cleanly).
KILL_WINDOW = 0.4


def write_specs(project: Path, count: int = SPECS) -> list[str]:
    names = [f"s{i:02}" for i in range(count)]
    for name in names:
        spec = {
            "version": 1,
            "name": name,
            "model": "openai/gpt-oss-120b",
            "messages": [{"role": "user", "content": f"Say hello ({name})."}],
        }
        path = project / "specs" / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return names


# ``runner`` as if every run were large (over REWRITE_LIMIT): it ends without a rewrite, and its
# readers go through results.order.
LARGE = (
    "import runner.runs.store as store; store.REWRITE_LIMIT = 0; "
    "from runner.cli.main import main; main()"
)


def runner_command(*args: str, large: bool = False) -> list[str]:
    start = ["-c", LARGE] if large else ["-m", "runner"]
    return [sys.executable, *start, "run", *args, "--quiet"]


def start_run(project: Path, base_url: str, large: bool = False) -> subprocess.Popen:
    command = runner_command(
        "specs",
        "--base-url",
        base_url,
        "--api-key-env",
        KEY_ENV,
        "--out",
        "runs",
        "-c",
        "4",
        "--backoff",
        "0.01",
        large=large,
    )
    env = {**os.environ, KEY_ENV: KEY}
    return subprocess.Popen(
        command, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def resume(project: Path, run_dir: Path, large: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ, KEY_ENV: KEY}
    return subprocess.run(
        runner_command("--resume", str(run_dir), large=large),
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def run_dir_of(project: Path) -> Path | None:
    runs = project / "runs"
    found = sorted(runs.iterdir()) if runs.is_dir() else []
    return found[0] if found else None


def saved_records(run_dir: Path) -> dict[str, dict]:
    """Every record line by id: each line but a torn last one must be whole JSON."""
    return read_records(run_dir)


def sent_count(server, name: str) -> int:
    return len(server.bodies_containing(f"({name})"))


def wait_for_manifest(project: Path, process: subprocess.Popen) -> None:
    """Wait until the run has started (its manifest exists); Python's start-up varies a lot."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and process.poll() is None:
        run_dir = run_dir_of(project)
        if run_dir is not None and (run_dir / "manifest.json").is_file():
            return
        time.sleep(0.005)
    raise AssertionError("the run did not start")


def settle(server) -> None:
    """Wait until requests the killed runner had already written have reached the server."""
    count, stable_since = server.count, time.monotonic()
    while time.monotonic() - stable_since < 0.1:
        time.sleep(0.01)
        if server.count != count:
            count, stable_since = server.count, time.monotonic()


def kill_after(process: subprocess.Popen, seconds: float) -> None:
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()  # SIGKILL; TerminateProcess on Windows
    process.wait(timeout=10)
    process.stdout.close()  # type: ignore[union-attr]
    process.stderr.close()  # type: ignore[union-attr]


def assert_finished(
    project: Path, run_dir: Path, names: list[str], large: bool = False
) -> dict[str, dict]:
    records = saved_records(run_dir)
    assert sorted(records) == names
    assert all(r["status"] == "ok" for r in records.values())
    lines = (run_dir / "results.jsonl").read_text().splitlines()
    read = [r["id"] for r in RunStore.open(run_dir).records()]
    assert read == names  # plan order, each record once
    if not large:
        assert [json.loads(line)["id"] for line in lines] == names
    manifest = json.loads((run_dir / "manifest.json").read_text())
    in_order = [json.loads(line)["id"] for line in lines] == names
    assert in_order != ("results_order" in manifest)  # read through results.order if not
    assert manifest["status"] == "complete" and manifest["results"] == "final"
    assert manifest["counts"]["total"] == len(names) == manifest["counts"]["ok"]
    assert not [p for p in run_dir.rglob("*.tmp")], "temporary files left behind"
    return records


@pytest.fixture
def latent_server(openai_server):
    openai_server.latency = LATENCY
    openai_server.handle_error = lambda request, client_address: None
    return openai_server


@dataclass
class Trial:
    """One run killed at a random moment, in its own folder with its own server."""

    seed: int
    folder: Path
    server: Any
    names: list[str]
    delay: float = 0.0
    large: bool = False
    run_dir: Path | None = None
    before: dict[str, dict] = field(default_factory=dict)
    sent_before: dict[str, int] = field(default_factory=dict)
    resumed: subprocess.CompletedProcess | None = None


def start_and_kill(trial: Trial) -> None:
    process = start_run(trial.folder, trial.server.base_url, trial.large)
    wait_for_manifest(trial.folder, process)
    kill_after(process, trial.delay)
    trial.run_dir = run_dir_of(trial.folder)
    assert trial.run_dir is not None
    settle(trial.server)
    trial.before = saved_records(trial.run_dir)  # every whole line there is whole JSON
    trial.sent_before = {name: sent_count(trial.server, name) for name in trial.names}
    assert all(trial.sent_before[name] >= 1 for name in trial.before)
    trial.resumed = resume(trial.folder, trial.run_dir, trial.large)


def check_resumed(trial: Trial) -> None:
    result = trial.resumed
    assert trial.run_dir is not None and result is not None
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    records = assert_finished(trial.folder, trial.run_dir, trial.names, trial.large)
    for name in trial.names:
        sent_after = sent_count(trial.server, name)
        if name in trial.before and trial.before[name]["status"] == "ok":
            assert sent_after == trial.sent_before[name], f"{name} was sent again after resuming"
            assert records[name]["finished_at"] == trial.before[name]["finished_at"]
        elif records[name].get("cached"):
            # Answered before the kill and cached, but killed before its record was saved:
            # the resume takes the answer from the cache instead of paying for it again.
            assert sent_after == trial.sent_before[name] >= 1, name
        else:
            assert sent_after == trial.sent_before[name] + 1, name


@pytest.mark.parametrize("batch", range(TRIALS // PARALLEL))
def test_runs_killed_at_random_moments_resume_without_loss_or_resending(tmp_path, batch):
    """PARALLEL trials at once, each with its own folder, server and runner processes: start
    ``runner run``, SIGKILL it at a random moment, then ``runner run --resume``."""
    kill_and_resume(tmp_path, batch)


def test_large_runs_killed_at_random_moments_resume_without_loss_or_resending(tmp_path):
    """The same with runs that end without a rewrite: read through results.order."""
    kill_and_resume(tmp_path, 0, large=True)


def kill_and_resume(tmp_path: Path, batch: int, large: bool = False) -> None:
    from openai_server import FakeOpenAI

    trials = []
    for seed in range(batch * PARALLEL, (batch + 1) * PARALLEL):
        folder = tmp_path / f"seed{seed}"
        folder.mkdir()
        (folder / "pyproject.toml").write_text("")
        server = FakeOpenAI(latency=LATENCY).start()
        server.handle_error = lambda request, client_address: None
        delay = random.Random(seed).uniform(0.0, KILL_WINDOW)
        trials.append(Trial(seed, folder, server, write_specs(folder), delay, large))
    try:
        with ThreadPoolExecutor(PARALLEL) as pool:
            killed = {trial.seed: pool.submit(start_and_kill, trial) for trial in trials}
        for trial in trials:
            error = killed[trial.seed].exception()
            if error is not None:
                raise AssertionError(f"trial with seed {trial.seed}: {error!r}") from error
            check_resumed(trial)
            print(
                f"seed {trial.seed}: killed {trial.delay:.2f}s into the run with "
                f"{len(trial.before)} of {len(trial.names)} records saved"
            )
    finally:
        for trial in trials:
            trial.server.stop()


def test_a_kill_before_any_record_exists_then_resume_sends_everything(project, latent_server):
    names = write_specs(project, 8)
    latent_server.latency = 5.0

    process = start_run(project, latent_server.base_url)
    deadline = time.monotonic() + 10
    while latent_server.count < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    kill_after(process, 0)
    run_dir = run_dir_of(project)
    assert run_dir is not None and saved_records(run_dir) == {}
    latent_server.latency = 0.0

    result = resume(project, run_dir)

    assert result.returncode == 0, result.stderr
    assert_finished(project, run_dir, names)
    for name in names:
        assert sent_count(latent_server, name) in (1, 2)  # 2: it was in flight when killed


def test_resuming_a_complete_run_sends_nothing(project, latent_server):
    names = write_specs(project, 6)
    process = start_run(project, latent_server.base_url)
    assert process.wait(timeout=30) == 0
    process.stdout.close()  # type: ignore[union-attr]
    process.stderr.close()  # type: ignore[union-attr]
    run_dir = run_dir_of(project)
    assert run_dir is not None
    first = assert_finished(project, run_dir, names)
    count = latent_server.count

    result = resume(project, run_dir)

    assert result.returncode == 0, result.stderr
    assert latent_server.count == count == len(names)
    assert assert_finished(project, run_dir, names) == first


def test_resume_removes_temporary_files_a_kill_left_behind(project, latent_server):
    """A kill during a rewrite leaves a hidden .tmp file; resuming deletes it (found by seed 12)."""
    names = write_specs(project, 3)
    process = start_run(project, latent_server.base_url)
    assert process.wait(timeout=30) == 0
    process.stdout.close()  # type: ignore[union-attr]
    process.stderr.close()  # type: ignore[union-attr]
    run_dir = run_dir_of(project)
    assert run_dir is not None
    (run_dir / ".results.jsonl.k1ll3d.tmp").write_text('{"id"')
    (run_dir / ".manifest.json.k1ll3d.tmp").write_text('{"run_id"')

    result = resume(project, run_dir)

    assert result.returncode == 0, result.stderr
    assert_finished(project, run_dir, names)
