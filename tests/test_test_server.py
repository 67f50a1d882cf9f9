"""The local test server as docs/limits.md starts it: a process, with faults from its command
line (``--fault``), that runner retries through."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from helpers import read_records, write_spec

SERVER = Path(__file__).parent / "openai_server.py"


def test_the_server_started_as_the_docs_say_fails_on_demand(project, run_cli):
    write_spec(project, "alpha", "Say hello.")
    command = [sys.executable, str(SERVER), "--port", "0", "--fault", "500", "--fault", "429"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as server:
        try:
            assert server.stdout is not None
            port = int(server.stdout.readline().split()[1])
            base_url = f"http://127.0.0.1:{port}/v1"
            result = run_cli("run", "specs", "--base-url", base_url, "--no-cache", "--json")
        finally:
            server.terminate()
    assert result.exit_code == 0, result.output
    (record,) = read_records(Path(json.loads(result.stdout)["run_dir"])).values()
    assert record["status"] == "ok" and record["attempts"] == 3  # a 500, a 429, an answer
