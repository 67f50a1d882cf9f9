"""Cases at scale: run a spec over a 10,000-row and a 100,000-row CSV on the offline provider.

Measures, for each size, the whole `runner run` process (validate every row, render, answer
offline, check, save one line per case in results.jsonl): wall time, cases per second, CPU
time and peak memory (the child's ru_maxrss). Bounded memory means the peak does not grow
with the rows.

    python bench/cases_scale.py                 # 10,000 and 100,000 rows
    python bench/cases_scale.py --rows 1000 5000
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from measure import Usage, run_child

# Scratch space beside the project: on some machines /tmp is a much slower file system.
WORK = Path(__file__).resolve().parent / ".work"

SPEC = """\
version: 1
name: scale
model: openai/gpt-oss-120b
temperature: 0.2
max_completion_tokens: 64
cases: data/reviews.csv
messages:
  - role: system
    content: You classify product reviews as positive, negative or mixed.
  - role: user
    content: "Review {{ id }} of {{ product }}: {{ review }}"
"""


@dataclass
class Measurement:
    rows: int
    wall: float
    cpu: float
    peak_mb: float
    records: int


def write_project(folder: Path, rows: int) -> Path:
    (folder / "pyproject.toml").write_text("")
    specs = folder / "specs"
    (specs / "data").mkdir(parents=True)
    (specs / "scale.yaml").write_text(SPEC)
    with open(specs / "data" / "reviews.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "product", "review"])
        for i in range(rows):
            writer.writerow([f"r{i}", f"product {i % 97}", f"Review text number {i}, fine."])
    return specs / "scale.yaml"


def offline_run(spec: Path, folder: Path, concurrency: int = 8) -> Usage:
    """``runner run SPEC --provider offline`` into FOLDER/runs, measured; exits when it fails."""
    command = [
        sys.executable, "-m", "runner", "run", str(spec), "--provider", "offline",
        "--out", str(folder / "runs"), "--quiet", "-c", str(concurrency),
    ]  # fmt: skip
    usage = run_child(command, cwd=folder)
    if usage.returncode != 0:
        raise SystemExit(f"runner run failed on {spec}:\n{usage.stderr[-2000:]}")
    return usage


def measure(rows: int, concurrency: int) -> Measurement:
    WORK.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=WORK) as temp:
        folder = Path(temp)
        usage = offline_run(write_project(folder, rows), folder, concurrency)
        results = next((folder / "runs").iterdir()) / "results.jsonl"
        records = results.read_bytes().count(b"\n")
    return Measurement(rows, usage.wall, usage.cpu, usage.maxrss_mb, records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    print("| rows | records saved | wall s | cases/s | CPU s | peak RSS MB |")
    print("|---:|---:|---:|---:|---:|---:|")
    for rows in args.rows:
        m = measure(rows, args.concurrency)
        print(
            f"| {m.rows:,} | {m.records:,} | {m.wall:.1f} | {m.rows / m.wall:,.0f} "
            f"| {m.cpu:.1f} | {m.peak_mb:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
