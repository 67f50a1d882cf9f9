"""Run directories at scale: what a run of 100,000 or 1,000,000 offline cases leaves on disk,
and the time and peak memory of every command that reads it.

For each size, one spec over a generated CSV on the offline provider:

- run: ``runner run`` of all the cases: wall, cases per second, peak RSS (``ru_maxrss`` of the
  child, from ``os.wait4``); peak disk while it ran (the run directory's allocated blocks plus
  the deleted temporary files the process held open, SQLite's among them, sampled every 0.1 s)
  against the final results.jsonl; and the tail: from the last time results.jsonl grew (the
  last answer saved) to the process's exit, which is what ending the run costs; and the
  start, from the launch to the first answer saved;
- disk: bytes the run directory takes (allocated blocks) per record, against the size of
  results.jsonl alone;
- resume: a second ``runner run`` killed with SIGKILL once about half of its records are saved,
  then ``runner run --resume``: wall and peak RSS of the resume, and that it ends with one line
  per case;
- diff: ``runner diff`` of the first run against the resumed one (a second run of the same
  plan, whose every line differs in its timings);
- diffcopy: ``runner diff`` of the first run against a copy of its results.jsonl with every
  10th answer changed (parsed and shown; the other lines are byte-identical);
- export: ``runner export`` of the first run (offline answers are not replayable: it reads
  every record and writes nothing, the worst case for reading).

    python bench/storage_scale.py                       # 100,000 and 1,000,000 cases
    python bench/storage_scale.py --rows 100000 --steps run,disk,resume,diff
    PYTHONPATH=/path/to/older/checkout python bench/storage_scale.py --rows 100000 \
        --steps run,disk,resume,diff,export --work /tmp/older    # the same, older runner
    python bench/storage_scale.py --rows 1000000 --work /big/disk/scratch --keep

``--keep`` leaves the scratch folder (``--work``) in place so a later call can run other steps
on the same runs. Nothing here is used by the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cases_scale import write_project  # the same spec and CSV as cases_scale

WORK = Path(__file__).resolve().parent / ".work"
STEPS = ("run", "disk", "resume", "diff", "diffcopy", "export")


@dataclass
class Child:
    """One finished child process: exit code, wall seconds, peak RSS in MB."""

    code: int
    wall: float
    peak_mb: float
    ended: float = 0.0  # perf_counter() when it was seen to end


class DiskWatch:
    """Samples a running ``runner run``: the disk its run directory (and the deleted files it
    holds open) takes, and when results.jsonl last grew."""

    def __init__(self, out: Path):
        self.out = out
        self.peak = 0
        self.size = 0
        self.started = self.grew_at = time.perf_counter()
        self.first_at: float | None = None

    def __call__(self, pid: int) -> None:
        runs = [p for p in self.out.iterdir() if p.is_dir()] if self.out.is_dir() else []
        total = 0
        for run in runs:
            for path in run.iterdir():
                try:
                    stat = path.stat()
                except FileNotFoundError:
                    continue  # a temporary file that was just renamed or deleted
                total += stat.st_blocks * 512
                if path.name == "results.jsonl" and stat.st_size > self.size:
                    self.size, self.grew_at = stat.st_size, time.perf_counter()
                    if self.first_at is None:
                        self.first_at = self.grew_at
        total += deleted_open_files(pid)
        self.peak = max(self.peak, total)


def deleted_open_files(pid: int) -> int:
    """Bytes allocated to deleted files ``pid`` holds open (SQLite's temporary databases)."""
    total = 0
    folder = Path(f"/proc/{pid}/fd")
    try:
        fds = list(folder.iterdir())
    except OSError:
        return 0
    for fd in fds:
        try:
            if os.readlink(fd).endswith(" (deleted)"):
                total += fd.stat().st_blocks * 512
        except OSError:
            continue
    return total


def child(
    command: list[str], cwd: Path, kill_when: float | None = None, probe=None, watch=None
) -> Child:
    """Run ``command``; with ``kill_when``, SIGKILL it once ``probe()`` reaches that value;
    ``watch(pid)`` is called about every 0.1 s while it runs."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if kill_when is not None and probe is not None and probe() >= kill_when:
            process.send_signal(signal.SIGKILL)
            kill_when = None
        if watch is not None:
            watch(process.pid)
        time.sleep(0.1)
    ended = time.perf_counter()
    process.returncode = os.waitstatus_to_exitcode(status)
    return Child(process.returncode, ended - started, usage.ru_maxrss / 1024, ended)


def runner(*args: str) -> list[str]:
    return [sys.executable, "-m", "runner", *args]


def only_run(folder: Path) -> Path:
    return next(p for p in sorted(folder.iterdir()) if p.is_dir())


def disk_bytes(folder: Path) -> int:
    """Bytes allocated to every file under ``folder`` (what du counts)."""
    return sum(p.stat().st_blocks * 512 for p in folder.rglob("*") if p.is_file())


def lines_of(path: Path) -> int:
    count = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            count += chunk.count(b"\n")
    return count


def change_every_tenth(source: Path, target: Path) -> None:
    """A copy of a run whose every 10th answer says something else (streamed)."""
    target.mkdir(parents=True)
    shutil.copy(source / "manifest.json", target / "manifest.json")
    with open(source / "results.jsonl", "rb") as read, open(target / "results.jsonl", "wb") as out:
        for number, line in enumerate(read):
            if number % 10 == 0:
                record = json.loads(line)
                record["output"]["content"] = "something else"
                line = (json.dumps(record, ensure_ascii=False) + "\n").encode()
            out.write(line)


def measure(rows: int, steps: set[str], work: Path, concurrency: int) -> list[str]:
    folder = work / f"rows-{rows}"
    spec = folder / "specs" / "scale.yaml"
    if not spec.exists():
        folder.mkdir(parents=True, exist_ok=True)
        write_project(folder, rows)
    out: list[str] = []
    first = folder / "runs-a"
    send = ["--provider", "offline", "--quiet", "-c", str(concurrency)]
    if "run" in steps:
        shutil.rmtree(first, ignore_errors=True)
        watch = DiskWatch(first)
        done = child(runner("run", str(spec), "--out", str(first), *send), folder, watch=watch)
        final = (only_run(first) / "results.jsonl").stat().st_size
        out.append(
            f"| {rows:,} | run | {done.wall:.1f} | {rows / done.wall:,.0f} cases/s "
            f"| {done.peak_mb:.0f} | exit {done.code} |"
        )
        out.append(
            f"| {rows:,} | run: peak disk | | {watch.peak / final:.3f}x the final results.jsonl "
            f"({watch.peak / 1e6:,.0f} MB of {final / 1e6:,.0f} MB) | | |"
        )
        out.append(
            f"| {rows:,} | run: tail | {done.ended - watch.grew_at:.1f} | from the last answer "
            "saved to the exit | | |"
        )
        start = (watch.first_at or done.ended) - watch.started
        out.append(f"| {rows:,} | run: start | {start:.1f} | until the first answer saved | | |")
    run_a = only_run(first)
    if "disk" in steps:
        results = (run_a / "results.jsonl").stat().st_size
        total = disk_bytes(run_a)
        records = lines_of(run_a / "results.jsonl")
        out.append(
            f"| {rows:,} | disk | | {total / records:,.0f} bytes/record "
            f"| | {total / results:.3f}x results.jsonl ({results / 1e6:,.0f} MB) |"
        )
    if "resume" in steps:
        second = folder / "runs-killed"
        shutil.rmtree(second, ignore_errors=True)
        second.mkdir()
        half = (run_a / "results.jsonl").stat().st_size / 2

        def saved() -> float:
            found = list(second.glob("*/results.jsonl"))
            return found[0].stat().st_size if found else 0

        killed = child(runner("run", str(spec), "--out", str(second), *send), folder, half, saved)
        run_b = only_run(second)
        before = lines_of(run_b / "results.jsonl")
        resumed = child(runner("run", "--resume", str(run_b), "--quiet"), folder)
        after = lines_of(run_b / "results.jsonl")
        out.append(
            f"| {rows:,} | resume | {resumed.wall:.1f} | killed (exit {killed.code}) at "
            f"{before:,} records | {resumed.peak_mb:.0f} | exit {resumed.code}, "
            f"{after:,} lines after |"
        )
    if "diff" in steps:
        # Against the resumed run: made independently, every line differs in its timings.
        second = folder / "runs-killed"
        if second.is_dir():
            done = child(runner("diff", str(run_a), str(only_run(second))), folder)
            out.append(
                f"| {rows:,} | diff | {done.wall:.1f} | against the resumed run "
                f"| {done.peak_mb:.0f} | exit {done.code} |"
            )
    if "diffcopy" in steps:
        changed = folder / "runs-changed" / run_a.name
        shutil.rmtree(changed.parent, ignore_errors=True)
        change_every_tenth(run_a, changed)
        done = child(runner("diff", str(run_a), str(changed)), folder)
        out.append(
            f"| {rows:,} | diff | {done.wall:.1f} | against a copy, every 10th answer changed "
            f"| {done.peak_mb:.0f} | exit {done.code} |"
        )
        shutil.rmtree(changed.parent)
    if "export" in steps:
        done = child(runner("export", str(run_a), "-o", str(folder / "cassette.jsonl")), folder)
        out.append(
            f"| {rows:,} | export | {done.wall:.1f} | | {done.peak_mb:.0f} | exit {done.code} |"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--steps", default=",".join(STEPS), help=f"any of {','.join(STEPS)}")
    parser.add_argument("--work", type=Path, default=WORK / "storage")
    parser.add_argument("--keep", action="store_true", help="keep the runs for later steps")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    steps = set(args.steps.split(","))
    print("| cases | command | wall s | figure | peak RSS MB | result |")
    print("|---:|---|---:|---|---:|---|", flush=True)
    for rows in args.rows:
        for line in measure(rows, steps, args.work, args.concurrency):
            print(line, flush=True)
    if not args.keep:
        shutil.rmtree(args.work, ignore_errors=True)


if __name__ == "__main__":
    main()
