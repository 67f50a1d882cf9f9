"""Reading a large run through the Python API: peak memory and speed against a plain loop.

Makes one offline run over a generated CSV (10,000 and 100,000 rows by default), then times
three child processes over the same run directory:

    plain   json.loads of each line of results.jsonl (the floor for any reader)
    records runner.open_run(dir).records(): typed Record objects, lazily, in plan order
    rows    runner.open_run(dir).rows(): one flat dict per record (the CSV export's columns)

and reports each one's wall time, its ratio to the plain loop and its peak memory (the child's
ru_maxrss). Bounded memory means the peak does not grow with the records.

    python bench/api_scale.py                    # 10,000 and 100,000 records
    python bench/api_scale.py --rows 1000 5000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cases_scale import WORK, offline_run, write_project
from measure import run_child

READERS = {
    "plain": (
        "import json, sys\n"
        "n = 0\n"
        "with open(sys.argv[1] + '/results.jsonl', 'rb') as f:\n"
        "    for line in f:\n"
        "        json.loads(line); n += 1\n"
        "print(n)\n"
    ),
    "records": (
        "import sys, runner\n"
        "n = sum(1 for r in runner.open_run(sys.argv[1]).records() if r.id)\n"
        "print(n)\n"
    ),
    "rows": (
        "import sys, runner\n"
        "n = sum(1 for row in runner.open_run(sys.argv[1]).rows() if row['id'])\n"
        "print(n)\n"
    ),
}


def make_run(folder: Path, rows: int) -> Path:
    offline_run(write_project(folder, rows), folder)
    return next((folder / "runs").iterdir())


def measure(run_dir: Path, reader: str) -> tuple[float, float, int]:
    """Wall seconds, peak RSS in MB and the number of records one reader saw."""
    usage = run_child([sys.executable, "-c", READERS[reader], str(run_dir)])
    if usage.returncode != 0:
        raise SystemExit(f"the {reader} reader failed on {run_dir}:\n{usage.stderr[-2000:]}")
    return usage.wall, usage.maxrss_mb, int(usage.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    print("| records | reader | wall s | vs plain | peak RSS MB |")
    print("|---:|---|---:|---:|---:|")
    WORK.mkdir(exist_ok=True)
    for rows in args.rows:
        with tempfile.TemporaryDirectory(dir=WORK) as temp:
            run_dir = make_run(Path(temp), rows)
            plain = None
            for reader in READERS:
                wall, peak, seen = measure(run_dir, reader)
                if seen != rows:
                    raise SystemExit(f"the {reader} reader saw {seen} of {rows} records")
                plain = plain or wall
                print(
                    f"| {rows:,} | {reader} | {wall:.2f} | {wall / plain:.2f}x | {peak:.0f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
