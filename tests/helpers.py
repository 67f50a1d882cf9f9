"""What many test files share: the test key, spec writers and run-directory readers."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

KEY_ENV = "RUNNER_TEST_KEY"
KEY = "sk-test-9f8e7d6c5b4a39281706"

# Ctrl-C and SIGTERM sent to a run from outside: Windows has no signals between processes
# (Ctrl-C is an event of the console a process shares, and terminating a process ends it at
# once, with no handler), so these tests are for Linux and macOS.
POSIX_SIGNALS = pytest.mark.skipif(
    os.name == "nt", reason="Windows sends no SIGINT or SIGTERM from one process to another"
)
# Peak memory read from /proc (Linux only).
LINUX_PROC = pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="reads peak memory from /proc (Linux)"
)


# Runs the CLI and, on the way out, writes the process's peak resident memory (VmHWM, kB) to
# argv[1]. Read inside the process: a child's ru_maxrss from wait4 starts at the parent's
# resident size when it was forked (Linux keeps the old address space's peak across exec), so a
# big pytest process would inflate it.
PEAK_WRAPPER = """\
import atexit, sys
def report(path=sys.argv[1]):
    with open("/proc/self/status") as status, open(path, "w") as out:
        out.write(next(line for line in status if line.startswith("VmHWM:")).split()[1])
atexit.register(report)
sys.argv = ["runner", *sys.argv[2:]]
from runner.cli.main import main
main()
"""


def write_spec(project: Path, name: str, content: str | None = None, **fields: Any) -> Path:
    """specs/NAME.yaml: one user message that names the spec, so a server can tell them apart."""
    spec = {
        "version": 1,
        "name": name,
        "model": "openai/gpt-oss-120b",
        "messages": [{"role": "user", "content": content or f"Say hello ({name})."}],
        **fields,
    }
    path = project / "specs" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def run_args(base_url: str, paths: tuple[str, ...] = ("specs",)) -> list[str]:
    """``runner run`` of PATHS against BASE_URL with the test key, into ./runs."""
    return ["run", *paths, "--base-url", base_url, "--api-key-env", KEY_ENV, "--out", "runs"]


def write_json_spec(project: Path, name: str, **fields: Any) -> Path:
    """A spec whose message asks for JSON (JSON mode needs the word in the messages)."""
    return write_spec(project, name, f"Say hello in JSON ({name}).", **fields)


def latest_run(project: Path) -> Path:
    """The newest run of PROJECT/runs, by the start time in its manifest: two runs started
    within one second have ids that differ only in their random part, so names alone do not
    order them."""
    from runner.runs.lookup import list_runs

    runs = list_runs(project / "runs")
    return runs[-1].path if runs else project / "runs" / "missing"


def read_records(run_dir: Path) -> dict[str, dict]:
    """Every whole record line of RUN_DIR/results.jsonl by id, read without runner's own
    reader (a later line for an id wins; a torn last line is left out)."""
    path = run_dir / "results.jsonl"
    lines = path.read_bytes().split(b"\n")[:-1] if path.is_file() else []
    records = (json.loads(line) for line in lines)
    return {r["id"]: r for r in records}


def saved_count(project: Path) -> int:
    """How many whole record lines the runs of PROJECT hold so far (while a run goes)."""
    paths = project.glob("runs/*/results.jsonl")
    return sum(p.read_bytes().count(b"\n") for p in paths)


SENTIMENT = {
    "type": "json_schema",
    "json_schema": {
        "name": "sentiment",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {
                "label": {"type": "string", "enum": ["positive", "negative"]},
                "score": {"type": "number", "minimum": 0, "maximum": 1},
            },
            "required": ["label", "score"],
            "additionalProperties": False,
        },
    },
}


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["c", "f"]},
            },
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}


def without_codes(text: str) -> str:
    """``runner validate``'s text output without the problem code that ends each line
    (``[unknown-key]``): for tests of the messages; tests/test_codes.py checks the codes."""
    import re

    return re.sub(r" \[[a-z]+(?:-[a-z]+)*\]$", "", text, flags=re.M)
