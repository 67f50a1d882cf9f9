"""Batch submit at scale: `runner batch submit` of 1,000, 10,000 and 100,000 requests.

Each size is one spec over a CSV of that many rows, submitted to the Files and Batches endpoints
of `tests/openai_server.py` (run in this process; it drops the uploaded bytes once counted).
For each submit, a child process: wall time, requests per second, CPU, peak memory (its VmHWM,
read by the child itself as it exits: a child's ru_maxrss starts at the parent's resident size
at fork time, on Linux) and that peak as a ratio of the smallest size's peak, measured in the
same run. A ratio near 1.0 means memory does not grow with the requests: the JSONL input files
are streamed to disk and uploaded from the file.

    python bench/batch_scale.py                  # 1,000, 10,000 and 100,000 requests
    python bench/batch_scale.py --rows 1000 20000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
WORK = Path(__file__).resolve().parent / ".work"

from helpers import PEAK_WRAPPER  # noqa: E402
from openai_server import FakeOpenAI  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from cases_scale import write_project  # noqa: E402


def submit(rows: int, server: FakeOpenAI) -> tuple[float, float, float, int]:
    """(wall s, CPU s, peak MB, files uploaded) of one submit of ROWS requests."""
    WORK.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=WORK) as temp:
        folder = Path(temp)
        write_project(folder, rows)  # the spec and CSV of bench/cases_scale.py
        peak_file = folder / "peak.txt"
        command = [
            sys.executable, "-c", PEAK_WRAPPER, str(peak_file), "batch", "submit", "specs",
            "--base-url", server.base_url, "--api-key-env", "BENCH_KEY", "--no-cache", "-q",
            "--out", "runs",
        ]  # fmt: skip
        env = {**os.environ, "BENCH_KEY": "k", "RUNNER_CACHE_DIR": str(folder / "cache")}
        uploads = len(server.batches.uploads)
        started = time.perf_counter()
        child = subprocess.Popen(command, cwd=folder, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"runner batch submit failed for {rows} rows")
        peak = int(peak_file.read_text()) / 1024.0
    cpu = usage.ru_utime + usage.ru_stime
    return wall, cpu, peak, len(server.batches.uploads) - uploads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    args = parser.parse_args()
    server = FakeOpenAI(record=False).start()
    server.batches.keep_uploads = False
    print("| requests | input files | wall s | requests/s | CPU s | peak RSS MB | peak / first |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    first = None
    try:
        for rows in args.rows:
            wall, cpu, peak, files = submit(rows, server)
            first = first or peak
            print(
                f"| {rows:,} | {files} | {wall:.1f} | {rows / wall:,.0f} | {cpu:.1f} "
                f"| {peak:.0f} | {peak / first:.2f} |",
                flush=True,
            )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
