"""Run one child process and measure it: wall time, CPU (user+sys) and peak RSS of that child."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Usage:
    """What one child process cost, and what it printed."""

    wall: float
    cpu: float
    maxrss_mb: float
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> dict[str, Any]:
        """The last line of stdout as JSON (clients and ``runner run --json`` print one)."""
        text = self.stdout.strip()
        if not text:
            return {}
        start = text.rfind("\n{") + 1 if not text.startswith("{") else 0
        return json.loads(text[start:])


def run_child(
    argv: Sequence[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> Usage:
    """Run ``argv`` to completion; CPU and RSS come from os.wait4 on exactly that child."""
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, env=env, cwd=cwd)
        assert proc.stdout is not None
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        proc.stdout.close()
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    return Usage(
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        maxrss_mb=usage.ru_maxrss / 1024,
        returncode=proc.returncode,
        stdout=out.decode(errors="replace"),
        stderr=stderr,
    )


def median(values: Sequence[float]) -> float:
    import statistics

    return statistics.median(values) if values else float("nan")


class Server:
    """A stub server process on 127.0.0.1, started from a script that prints ``PORT <n>``."""

    def __init__(self, script: Path, *args: str, python: str) -> None:
        self.proc = subprocess.Popen(
            [python, str(script), "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "PORT":
            self.stop()
            raise RuntimeError(f"{script} did not print PORT <n>")
        self.port = int(line[1])

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stats(self) -> dict[str, Any]:
        import urllib.request  # here, not at the top: children's peaks start at our size

        with urllib.request.urlopen(f"{self.root_url}/stats", timeout=10) as response:
            return json.loads(response.read())

    def cpu_seconds(self) -> float:
        """User+sys CPU the server process has used so far (from /proc)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
