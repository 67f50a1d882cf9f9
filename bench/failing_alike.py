"""Runs whose every request fails alike: how many requests reach the server (issue 21.5).

Each scenario is one ``runner run`` (a child process) of a generated spec against
``tests/openai_server.py`` (run in this process, so it counts every request it receives):

- wrong key: the server wants another key, so every request is a 401;
- retired model: the server answers every request 400 ``model_decommissioned``;
- no credit: every request is a 429 ``insufficient_quota`` (OpenAI's account without credit);
- matrix: two models, one retired and one served, half the cases each.

The table gives the requests the server received (the figure that matters: without the stop,
it is every case, and more with retries), the records saved, the requests left unsent for
``--resume``, the exit code and the wall time.

    python bench/failing_alike.py                   # 300 cases, -c 8 and -c 64
    python bench/failing_alike.py --cases 1000 --concurrency 8 32 128
    python bench/failing_alike.py --root /path/to/older/checkout --only "wrong key"

Nothing here is used by the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from openai_server import FakeOpenAI  # noqa: E402

KEY_ENV, KEY = "BENCH_KEY", "sk-bench-5b4a39281706"
MODEL = "openai/gpt-oss-120b"


def wrong_key(server: FakeOpenAI) -> dict:
    server.api_key = "sk-another-key"
    return {}


def retired(server: FakeOpenAI) -> dict:
    server.retired = {MODEL}
    return {}


def no_credit(server: FakeOpenAI, cases: int) -> dict:
    server.plan(*["no_credit"] * (cases * 2))
    return {}


def matrix(server: FakeOpenAI) -> dict:
    server.retired = {"retired-model"}
    return {"matrix": {"model": ["retired-model", "served-model"]}}


def scenario(name: str, server: FakeOpenAI, cases: int) -> tuple[dict, int]:
    """Set the server up for ``name``; the spec's extra fields and its number of cases."""
    setups: dict[str, Callable[[], dict]] = {
        "wrong key": lambda: wrong_key(server),
        "retired model": lambda: retired(server),
        "no credit": lambda: no_credit(server, cases),
        "matrix (1 of 2 retired)": lambda: matrix(server),
    }
    extra = setups[name]()
    return extra, cases // 2 if "matrix" in extra else cases


def run_one(name: str, cases: int, concurrency: int, root: Path = ROOT) -> dict:
    server = FakeOpenAI().start()
    try:
        extra, per_model = scenario(name, server, cases)
        with tempfile.TemporaryDirectory() as folder:
            project = Path(folder)
            (project / "pyproject.toml").write_text("")
            spec = {
                "version": 1,
                "name": "bench",
                "model": MODEL,
                "messages": [{"role": "user", "content": "Say hello ({{ n }})."}],
                "cases": [{"id": f"c{i}", "n": i} for i in range(per_model)],
                **extra,
            }
            (project / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
            command = [
                sys.executable, "-m", "runner", "run", "spec.yaml",
                "--base-url", server.base_url, "--api-key-env", KEY_ENV,
                "--out", "runs", "-c", str(concurrency), "--no-cache", "--quiet",
            ]  # fmt: skip
            env = {**os.environ, KEY_ENV: KEY, "PYTHONPATH": str(root)}
            started = time.monotonic()
            done = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True)
            wall = time.monotonic() - started
            (run_dir,) = (project / "runs").iterdir()
            manifest = json.loads((run_dir / "manifest.json").read_text())
            counts = manifest["counts"]
        return {
            "scenario": name,
            "cases": cases,
            "concurrency": concurrency,
            "received": server.count,
            "saved": counts["total"],
            "not_sent": counts["not_sent"],
            "exit": done.returncode,
            "wall": wall,
            "message": done.stderr.strip().splitlines()[0] if done.stderr.strip() else "",
        }
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 64])
    parser.add_argument("--root", type=Path, default=ROOT, help="the runner checkout to run")
    parser.add_argument("--only", nargs="+", help="these scenarios only")
    args = parser.parse_args()
    names = args.only or ["wrong key", "retired model", "no credit", "matrix (1 of 2 retired)"]
    rows = [run_one(n, args.cases, c, args.root) for n in names for c in args.concurrency]
    print("| scenario | cases | -c | requests received | records saved | not sent | exit | wall |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['scenario']} | {r['cases']} | {r['concurrency']} | {r['received']} | "
            f"{r['saved']} | {r['not_sent']} | {r['exit']} | {r['wall']:.1f} s |"
        )
    print()
    for r in rows[:: len(args.concurrency)]:
        print(f"- {r['scenario']}: {r['message'][:300]}")


if __name__ == "__main__":
    main()
