"""What grading with a judge adds to a run of 10,000 cases, on the offline provider.

One spec over a CSV of N rows is run twice, as a whole `runner run` process each time: without
checks, then with one `- judge:` check (the judge is a spec with a strict verdict schema, also
answered offline). Then `runner score` grades the judged run again. Each process is measured
alone (wall, CPU, peak RSS from `measure.run_child`), and the size of results.jsonl is read,
since each record keeps its judge's request and response.

Then, against ``tests/openai_server.py`` with a latency per answer (a provider's round trip),
a smaller run shows what the cache and ``runner score``'s pool do: the judged run, the same run
again (everything from the cache), and ``runner score`` after the judge's prompt changed (every
judge request sent again, several at a time). The server's /stats counts what reached it.

    python bench/judge_scale.py                 # 10,000 rows, then 1,000 rows at 50 ms
    python bench/judge_scale.py --rows 1000 --server-rows 200
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from measure import Server, Usage, run_child

TESTS = Path(__file__).resolve().parent.parent / "tests"

WORK = Path(__file__).resolve().parent / ".work"

SPEC = """\
version: 1
name: scale
model: openai/gpt-oss-20b
temperature: 0.2
max_completion_tokens: 64
cases: data/tickets.csv
messages:
  - role: system
    content: You answer support tickets in at most three sentences.
  - role: user
    content: "Ticket {{ id }} about {{ product }}: {{ ticket }}"
"""

JUDGED = (
    SPEC
    + """\
expect:
  - judge: judges/polite.yaml
"""
)

JUDGE = """\
version: 1
name: polite
model: openai/gpt-oss-120b
temperature: 0
max_completion_tokens: 200
response_format:
  type: json_schema
  json_schema:
    name: verdict
    strict: true
    schema:
      type: object
      additionalProperties: false
      required: [pass, score, reason]
      properties:
        pass: {type: boolean}
        score: {type: integer, minimum: 1, maximum: 5}
        reason: {type: string}
messages:
  - role: system
    content: Grade the reply for politeness. Answer a verdict in JSON.
  - role: user
    content: "Ticket: {{ ticket }}\\nReply: {{ answer }}"
"""


@dataclass
class Measurement:
    label: str
    usage: Usage
    results_mb: float


def write_project(folder: Path, rows: int) -> None:
    (folder / "pyproject.toml").write_text("")
    specs = folder / "specs"
    (specs / "data").mkdir(parents=True)
    (specs / "judges").mkdir()
    (specs / "plain.yaml").write_text(SPEC)
    (specs / "judged.yaml").write_text(JUDGED.replace("name: scale", "name: judged"))
    (specs / "judges" / "polite.yaml").write_text(JUDGE)
    with open(specs / "data" / "tickets.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "product", "ticket"])
        for i in range(rows):
            writer.writerow([f"T-{i}", f"product {i % 97}", f"Ticket text number {i}, slow."])


def runner(folder: Path, *args: str, env: dict[str, str] | None = None) -> Usage:
    usage = run_child([sys.executable, "-m", "runner", *args], cwd=folder, env=env)
    if usage.returncode != 0:
        raise SystemExit(f"runner {' '.join(args)} failed:\n{usage.stderr[-2000:]}")
    return usage


def results_mb(run_dir: Path) -> float:
    return (run_dir / "results.jsonl").stat().st_size / 1e6


def measure(rows: int, concurrency: int) -> list[Measurement]:
    WORK.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=WORK) as temp:
        folder = Path(temp)
        write_project(folder, rows)
        common = ("--provider", "offline", "--quiet", "-c", str(concurrency))
        plain = runner(folder, "run", "specs/plain.yaml", "--out", "plain", *common)
        judged = runner(folder, "run", "specs/judged.yaml", "--out", "judged", *common)
        plain_dir = next((folder / "plain").iterdir())
        judged_dir = next((folder / "judged").iterdir())
        scored = runner(folder, "score", str(judged_dir))
        return [
            Measurement("run, no checks", plain, results_mb(plain_dir)),
            Measurement("run, one judge", judged, results_mb(judged_dir)),
            Measurement("score (re-grade the judged run)", scored, results_mb(judged_dir)),
        ]


def measure_server(rows: int, latency: float, concurrency: int) -> list[tuple[str, Usage, int]]:
    """(label, usage, requests the server received) of a judged run, the same run again, and
    runner score after the judge's prompt changed."""
    WORK.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=WORK) as temp:
        folder = Path(temp)
        write_project(folder, rows)
        env = {**os.environ, "RUNNER_BENCH_KEY": "sk-bench", "RUNNER_CACHE_DIR": str(folder)}
        with Server(
            TESTS / "openai_server.py", "--latency", str(latency), python=sys.executable
        ) as server:
            common = (
                "--base-url", f"{server.root_url}/v1", "--api-key-env", "RUNNER_BENCH_KEY",
                "--quiet", "-c", str(concurrency), "--out", "runs",
            )  # fmt: skip
            found: list[tuple[str, Usage, int]] = []
            for label in ("run, one judge", "the same run again"):
                usage = runner(folder, "run", "specs/judged.yaml", *common, env=env)
                found.append((label, usage, int(server.stats()["requests"])))
            judge = folder / "specs" / "judges" / "polite.yaml"
            judge.write_text(judge.read_text().replace("politeness", "courtesy"))
            run_dir = sorted((folder / "runs").iterdir())[0]
            usage = runner(folder, "score", str(run_dir), env=env)
            found.append(("score after the judge changed", usage, int(server.stats()["requests"])))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--server-rows", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()
    print(f"{args.rows:,} cases, offline provider, -c {args.concurrency}\n")
    print("| command | wall s | CPU s | peak RSS MB | results.jsonl MB |")
    print("|---|---:|---:|---:|---:|")
    for m in measure(args.rows, args.concurrency):
        print(
            f"| {m.label} | {m.usage.wall:.1f} | {m.usage.cpu:.1f} | {m.usage.maxrss_mb:.0f} "
            f"| {m.results_mb:.1f} |",
            flush=True,
        )
    if not args.server_rows:
        return
    print(
        f"\n{args.server_rows:,} cases, tests/openai_server.py answering in "
        f"{1000 * args.latency:.0f} ms, -c {args.concurrency}\n"
    )
    print("| command | wall s | CPU s | requests the server has received |")
    print("|---|---:|---:|---:|")
    for label, usage, received in measure_server(args.server_rows, args.latency, args.concurrency):
        print(f"| {label} | {usage.wall:.1f} | {usage.cpu:.1f} | {received:,} |", flush=True)


if __name__ == "__main__":
    main()
