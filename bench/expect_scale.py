"""What expectations cost: the same labelled classification run with and without `expect:`, and
`runner score` against the run that made the answers.

One project with a CSV of labelled tickets (`expected_team` column) and two specs that differ
only in their `expect:` (three checks: equals on a JSON field filled in from the column, a regex,
a token ceiling). For each size, in alternating rounds on the offline provider, it measures the
whole `runner run` process of each spec, and `runner score` of the run with checks (every saved
answer scored again, nothing sent). Figures are medians over rounds; the ratios are what to
compare, since the machine is shared.

    python bench/expect_scale.py                  # 10,000 records (5,000 rows x 2 models), 3 rounds
    python bench/expect_scale.py --rows 50000 --rounds 5
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import Usage, run_child

WORK = Path(__file__).resolve().parent / ".work"

SCHEMA = """\
{"type": "object",
 "properties": {"team": {"type": "string", "enum": ["billing", "platform", "docs"]},
                "summary": {"type": "string"}},
 "required": ["team", "summary"], "additionalProperties": false}
"""

SPEC = """\
version: 1
name: {name}
model: openai/gpt-oss-20b
max_completion_tokens: 200
matrix:
  model: [openai/gpt-oss-20b, openai/gpt-oss-120b]
response_format:
  type: json_schema
  json_schema:
    name: triage
    strict: true
    schema: {{$ref: triage.schema.json}}
cases: data/tickets.csv
{expect}messages:
  - role: user
    content: "Route this ticket to billing, platform or docs: {{{{ ticket }}}}"
"""

EXPECT = """\
expect:
  - equals: "{{ expected_team }}"
    path: team
  - regex: '\\S'
    path: summary
  - max_tokens: 200
"""


def write_project(folder: Path, rows: int) -> None:
    (folder / "pyproject.toml").write_text("")
    specs = folder / "specs"
    (specs / "data").mkdir(parents=True)
    (specs / "triage.schema.json").write_text(SCHEMA)
    (specs / "with.yaml").write_text(SPEC.format(name="with", expect=EXPECT))
    (specs / "without.yaml").write_text(SPEC.format(name="without", expect=""))
    rng = random.Random(7)
    with open(specs / "data" / "tickets.csv", "w") as handle:
        handle.write("id,ticket,expected_team\n")
        for i in range(rows):
            team = rng.choice(["billing", "platform", "docs"])
            handle.write(f"T{i},ticket number {i} about {team},{team}\n")


def runner(*args: str) -> Usage:
    usage = run_child([sys.executable, "-m", "runner", *args], env=None)
    if usage.returncode != 0:
        raise SystemExit(f"runner {' '.join(args)} failed:\n{usage.stderr}")
    return usage


def measure(rows: int, rounds: int) -> dict[str, list[Usage]]:
    WORK.mkdir(exist_ok=True)
    figures: dict[str, list[Usage]] = {"with": [], "without": [], "score": []}
    with tempfile.TemporaryDirectory(dir=WORK) as scratch:
        folder = Path(scratch)
        write_project(folder, rows)
        os.chdir(folder)
        for round_number in range(rounds):
            for name in ("without", "with"):
                out = f"runs-{name}-{round_number}"
                figures[name].append(
                    runner("run", f"specs/{name}.yaml", "--provider", "offline", "--out", out, "-q")
                )
            (run_dir,) = Path(f"runs-with-{round_number}").iterdir()
            figures["score"].append(runner("score", str(run_dir)))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000, help="labelled rows (x 2 models)")
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    figures = measure(options.rows, options.rounds)

    def median(name: str, field: str) -> float:
        return statistics.median(getattr(u, field) for u in figures[name])

    records = options.rows * 2
    print(f"{records:,} records ({options.rows:,} rows x 2 models), {options.rounds} rounds\n")
    print("| command | wall s | CPU s | CPU per record | peak MB |")
    print("|---|---:|---:|---:|---:|")
    labels = {
        "without": "run, no expect:",
        "with": "run, 3 checks",
        "score": "score (nothing sent)",
    }
    for name, label in labels.items():
        cpu = median(name, "cpu")
        print(
            f"| {label} | {median(name, 'wall'):.2f} | {cpu:.2f} | "
            f"{cpu / records * 1e6:.0f} us | {median(name, 'maxrss_mb'):.0f} |"
        )
    ratio = statistics.median(
        a.cpu / b.cpu for a, b in zip(figures["with"], figures["without"], strict=True)
    )
    print(f"\nCPU with checks / without (median of paired rounds): {ratio:.2f}")
    score = statistics.median(
        s.cpu / w.cpu for s, w in zip(figures["score"], figures["with"], strict=True)
    )
    print(f"CPU of score / the run it scores: {score:.2f}")


if __name__ == "__main__":
    main()
