"""Reports at scale: `runner report` and `runner export --format csv` over 10,000 and 100,000
records.

Run directories are synthesised through the store's own writer (``RunStore.save_record`` and
``finish_results``, as ``runner run`` saves them): a classification spec with a two-model
matrix, parsed JSON answers of about 200 characters, usage, latency and one expectation check
per record. A second run of each size changes every tenth answer, for the two-run comparison.

Each command is its own child process, run ``--rounds`` times in alternation; wall time is the
median and peak RSS the largest, from ``os.wait4`` (``bench/measure.py``). The baseline is a
child that only reads every record through ``RunStore.open(path).records()``: the ratios say
what a command costs beside reading the run.

    python bench/report_scale.py                 # 10,000 and 100,000 records
    python bench/report_scale.py --records 2000
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import Usage, median, run_child

from runner.runs.store import RunStore, utc_now

WORK = Path(__file__).resolve().parent / ".work"
MODELS = ("openai/gpt-oss-20b", "openai/gpt-oss-120b")
LABELS = ("billing", "platform", "docs")
READ = (
    "import sys; from pathlib import Path; from runner.runs.store import RunStore; "
    "sum(1 for _ in RunStore.open(Path(sys.argv[1])).records())"
)


def record(case: int, model: str, label: str, expected: str, rng: random.Random) -> dict:
    """One record shaped as runner saves it (the fields the report and export read, and the
    bulky request and response a real record carries)."""
    answer = f'{{"label": "{label}", "reason": "{"The ticket mentions it. " * 7}"}}'
    usage = {
        "prompt_tokens": 60 + case % 40,
        "completion_tokens": 30,
        "total_tokens": 90 + case % 40,
    }
    ticket = f"Ticket {case}: something about {expected}, with a few more words, and a comma."
    messages = [
        {"role": "system", "content": "Answer with the team for this ticket as JSON."},
        {"role": "user", "content": ticket},
    ]
    passed = label == expected
    return {
        "id": f"triage/t{case}/model={model}",
        "spec": {"path": "specs/triage.yaml", "name": "triage", "sha256": "0" * 64},
        "case": {"id": f"t{case}", "row": case + 2, "source": "specs/data/tickets.csv"},
        "matrix": {"model": model},
        "vars": {"id": f"t{case}", "ticket": ticket, "expected": expected},
        "provider": {"name": "offline", "base_url": None, "api_key_env": None},
        "offline": True,
        "cached": False,
        "request": {"model": model, "messages": messages, "temperature": 0},
        "status": "ok",
        "http_status": 200,
        "response": {
            "id": f"offline-{case}",
            "object": "chat.completion",
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}}],
            "usage": usage,
        },
        "output": {
            "content": answer,
            "parsed": {"label": label, "reason": "The ticket mentions it. " * 7},
            "finish_reason": "stop",
            "truncated": False,
            "valid": True,
            "errors": [],
            "tool_calls": [],
        },
        "usage": usage,
        "error": None,
        "attempts": 1,
        "latency_ms": round(rng.lognormvariate(6, 0.5), 3),
        "started_at": utc_now(),
        "finished_at": utc_now(),
        "expectations": {
            "passed": passed,
            "total": 1,
            "failed": int(not passed),
            "checks": [
                {
                    "check": "equals",
                    "target": "label",
                    "expected": expected,
                    "actual": label,
                    "passed": passed,
                    "message": "" if passed else f"label is {label!r}, expected {expected!r}",
                }
            ],
        },
    }


def synthesise(folder: Path, records: int, changed_every: int = 0) -> Path:
    """A finished run directory of ``records`` records (half per model)."""
    rng = random.Random(records + changed_every)
    store = RunStore.create(folder)
    store.write_manifest({"run_id": store.run_id, "started_at": utc_now(), "status": "running"})
    ids = []
    for i in range(records):
        case, model = divmod(i, len(MODELS))
        expected = LABELS[case % 3]
        label = expected if case % 5 else LABELS[(case + 1) % 3]
        if changed_every and i % changed_every == 0:
            label = LABELS[(LABELS.index(label) + 1) % 3]
        item = record(case, MODELS[model], label, expected, rng)
        store.save_record(item)
        ids.append(item["id"])
    counts = store.finish_results(ids)
    manifest = store.read_manifest()
    store.write_manifest({**manifest, "status": "complete", "counts": counts})
    return store.root


def row(records: int, what: str, usage: Usage, baseline: Usage, output: Path | None) -> str:
    size = f"{output.stat().st_size / 1e6:.1f}" if output else "–"
    return (
        f"| {records:,} | {what} | {usage.wall:.1f} | {usage.wall / baseline.wall:.1f}x "
        f"| {usage.maxrss_mb:.0f} | {usage.maxrss_mb / baseline.maxrss_mb:.2f}x | {size} |"
    )


def measure(records: int, rounds: int) -> list[str]:
    """Every command ``rounds`` times, alternating; the medians, against the baseline's."""
    WORK.mkdir(exist_ok=True)
    python = sys.executable
    with tempfile.TemporaryDirectory(dir=WORK) as temp:
        folder = Path(temp)
        run_a = _synthesised(folder / "a", records, 0)
        run_b = _synthesised(folder / "b", records, 10)
        print(f"synthesised 2 x {records:,} records", file=sys.stderr, flush=True)
        runner = [python, "-m", "runner"]
        html, compare, csv = folder / "r.html", folder / "c.html", folder / "t.csv"
        commands: list[tuple[str, list[str], Path | None]] = [
            ("read every record (baseline)", [python, "-c", READ, str(run_b)], None),
            ("report, 1 run", [*runner, "report", str(run_b), "-o", str(html)], html),
            (
                "report, 2 runs compared",
                [*runner, "report", str(run_a), str(run_b), "-o", str(compare)],
                compare,
            ),
            ("report --format md", [*runner, "report", str(run_b), "--format", "md"], None),
            (
                "export --format csv",
                [*runner, "export", str(run_b), "--format", "csv", "-o", str(csv)],
                csv,
            ),
        ]
        usages: dict[str, list[Usage]] = {what: [] for what, _, _ in commands}
        for _ in range(rounds):
            for what, argv, _ in commands:
                usage = run_child(argv)
                if usage.returncode != 0:
                    raise SystemExit(f"{what} failed:\n{usage.stderr}")
                usages[what].append(usage)
        baseline = _median_usage(usages[commands[0][0]])
        lines = []
        for what, _, output in commands:
            lines.append(row(records, what, _median_usage(usages[what]), baseline, output))
            print(lines[-1], flush=True)
        return lines


def _synthesised(folder: Path, records: int, changed_every: int) -> Path:
    """``synthesise`` in a child process. A child's ru_maxrss starts from its parent's resident
    size (Linux keeps the high-water mark across fork and exec), so this process stays small:
    the run never passes through it."""
    argv = [sys.executable, __file__, "--synthesise", str(folder), str(records), str(changed_every)]
    usage = run_child(argv)
    if usage.returncode != 0:
        raise SystemExit(f"synthesising {records} records failed:\n{usage.stderr}")
    return Path(usage.stdout.strip())


def _median_usage(usages: list[Usage]) -> Usage:
    """The median wall time and the largest peak memory of a command's rounds."""
    first = usages[0]
    return Usage(
        median([u.wall for u in usages]),
        median([u.cpu for u in usages]),
        max(u.maxrss_mb for u in usages),
        first.returncode,
        first.stdout,
        first.stderr,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--rounds", type=int, default=3, help="runs of each command (median)")
    parser.add_argument("--synthesise", nargs=3, metavar=("DIR", "RECORDS", "CHANGED_EVERY"))
    args = parser.parse_args()
    if args.synthesise:
        folder, records, changed_every = args.synthesise
        print(synthesise(Path(folder), int(records), int(changed_every)))
        return
    print("| records | command | wall s | x baseline | peak RSS MB | x baseline | output MB |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for records in args.records:
        measure(records, args.rounds)


if __name__ == "__main__":
    main()
