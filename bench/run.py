"""Benchmark runner against the official SDKs and raw urllib3, and print markdown tables.

    python bench/run.py            # the full suite (about 4 minutes on 2 cores)
    python bench/run.py --quick    # smaller n and one round (about 1 minute)

Every client runs as its own process (CPU = user+sys of that child, from os.wait4) against a
local stub server on 127.0.0.1; clients alternate within each round and medians are reported.
See bench/README.md for what each scenario measures.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import promptfoo_client
import workload
from measure import Server, Usage, median, run_child

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SERVERS = {"bench": BENCH / "server.py", "tests": ROOT / "tests" / "openai_server.py"}
SERVER_ARGS = {"bench": (), "tests": ("--no-record",)}
# "runner" gets one spec file per request; "runner-cases" one spec with a case per request;
# promptfoo (the closest peer tool) joins when it is installed (see promptfoo_client.py).
PROMPTFOO = ("promptfoo",) if promptfoo_client.installed() else ()
CLIENTS = ("raw", "groq", "openai", "runner", "runner-cases", *PROMPTFOO)
KEY_ENV = "BENCH_API_KEY"


@dataclass(frozen=True)
class Config:
    """Sizes of every scenario; --quick shrinks them."""

    rounds: int = 3
    tiny: int = 10
    seq_n: int = 2000
    conc_n: int = 1000
    conc_c: int = 50
    latency: float = 0.1
    # More workers than the budget grants per window, so they contend for every slot.
    rl_rounds: int = 5
    rl_n: int = 120
    rl_c: int = 20
    rl_limit: int = 12
    rl_window: float = 1.0
    struct_n: int = 1000
    help_runs: int = 10
    validate_n: int = 1000
    server_n: int = 300
    scale_rows: tuple[int, ...] = (10_000, 100_000)
    server: str = "bench"

    @classmethod
    def quick(cls, server: str) -> Config:
        return cls(
            rounds=1,
            seq_n=300,
            conc_n=300,
            rl_rounds=2,
            rl_n=40,
            rl_c=16,
            rl_limit=8,
            rl_window=1.0,
            struct_n=200,
            help_runs=5,
            scale_rows=(2_000, 10_000),
            server=server,
        )


@dataclass
class Sample:
    """One client process run: its usage plus what it and the server report."""

    usage: Usage
    n: int
    ok: int
    failed: int
    send_seconds: float
    served: dict[str, int] = field(default_factory=dict)


class Bench:
    """Spec folders, the runner executable and the child-process launcher for one suite run."""

    def __init__(self, config: Config, work: Path) -> None:
        self.config = config
        self.work = work
        self.python = sys.executable
        self.runner = shutil.which("runner", path=str(Path(sys.executable).parent)) or "runner"
        self.spec_dirs: dict[tuple[int, bool], Path] = {}
        self.runs = 0
        help_text = subprocess.run(
            [self.runner, "run", "--help"], capture_output=True, text=True, check=True
        ).stdout
        self.no_cache = ["--no-cache"] if "--no-cache" in help_text else []

    def server(self, *args: str) -> Server:
        name = self.config.server
        return Server(SERVERS[name], *SERVER_ARGS[name], *args, python=self.python)

    def spec_dir(self, n: int, structured: bool = False) -> Path:
        key = (n, structured)
        if key not in self.spec_dirs:
            folder = self.work / f"specs-{n}{'-structured' if structured else ''}"
            self.spec_dirs[key] = workload.write_specs(folder, n, structured)
        return self.spec_dirs[key]

    def cases_spec(self, n: int, structured: bool = False) -> Path:
        key = (-n, structured)
        if key not in self.spec_dirs:
            folder = self.work / f"cases-{n}{'-structured' if structured else ''}"
            self.spec_dirs[key] = workload.write_cases_spec(folder, n, structured)
        return self.spec_dirs[key]

    def runner_argv(
        self, root_url: str, n: int, c: int, structured: bool, cases: bool = False
    ) -> list[str]:
        self.runs += 1
        out = self.work / f"runs-{self.runs}"
        specs = self.cases_spec(n, structured) if cases else self.spec_dir(n, structured)
        return [
            self.runner,
            "run",
            str(specs),
            "--base-url",
            f"{root_url}/v1",
            "--api-key-env",
            KEY_ENV,
            "--out",
            str(out),
            "-c",
            str(c),
            "--quiet",
            "--json",
            *self.no_cache,
        ]

    def client_argv(
        self, client: str, root_url: str, n: int, c: int, structured: bool
    ) -> list[str]:
        if client == "promptfoo":
            script = str(BENCH / "promptfoo_client.py")
            return [self.python, script, "--base-url", root_url, "--n", str(n), "-c", str(c)]
        if client in ("runner", "runner-cases"):
            return self.runner_argv(root_url, n, c, structured, cases=client == "runner-cases")
        argv = [self.python, str(BENCH / "clients.py"), client, "--base-url", root_url]
        return [*argv, "--n", str(n), "-c", str(c), *(["--structured"] if structured else [])]

    def env(self) -> dict[str, str]:
        cache = tempfile.mkdtemp(prefix="cache-", dir=self.work)
        return {**_base_env(), KEY_ENV: "k", "RUNNER_CACHE_DIR": cache}

    def run(
        self, client: str, server: Server, n: int, c: int = 1, structured: bool = False
    ) -> Sample:
        """Run one client process for ``n`` requests and check that all of them were served."""
        before = server.stats()["statuses"]
        usage = run_child(self.client_argv(client, server.root_url, n, c, structured), self.env())
        after = server.stats()["statuses"]
        served = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        report = usage.json()
        sample = Sample(
            usage=usage,
            n=n,
            ok=int(report.get("ok", 0)),
            failed=int(report.get("failed", 0)) + int(report.get("invalid_output", 0)),
            send_seconds=float(report.get("seconds", float("nan"))),
            served=served,
        )
        self.cleanup_runs()
        if usage.returncode != 0 or sample.ok != n:
            print(f"warning: {client} n={n}: rc={usage.returncode} ok={sample.ok}", file=sys.stderr)
            print(usage.stderr[-2000:], file=sys.stderr)
        return sample

    def cleanup_runs(self) -> None:
        for folder in self.work.glob("runs-*"):
            shutil.rmtree(folder, ignore_errors=True)
        for folder in self.work.glob("cache-*"):
            shutil.rmtree(folder, ignore_errors=True)


def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("RUNNER_")}


# ---- scenarios


def alternate(
    rounds: int, clients: Sequence[str], one: Callable[[str], dict[str, float]]
) -> dict[str, dict[str, float]]:
    """Run ``one(client)`` for every client in every round (A B C D, A B C D, ...); medians."""
    samples: dict[str, list[dict[str, float]]] = {client: [] for client in clients}
    for round_no in range(rounds):
        for client in clients:
            samples[client].append(one(client))
        print(f"  round {round_no + 1}/{rounds} done", file=sys.stderr)
    return {client: _medians(rows) for client, rows in samples.items()}


def _medians(rows: list[dict[str, float]]) -> dict[str, float]:
    return {key: median([row[key] for row in rows]) for key in rows[0]}


def cpu_figures(bench: Bench, server: Server, client: str, n: int, **kw: Any) -> dict[str, float]:
    """Whole-process and marginal CPU per request (a tiny run subtracts start-up)."""
    tiny = bench.config.tiny
    small = bench.run(client, server, tiny, **kw).usage
    big = bench.run(client, server, n, **kw)
    return {
        "cpu_ms_marginal": (big.usage.cpu - small.cpu) / (n - tiny) * 1000,
        "cpu_ms_whole": big.usage.cpu / n * 1000,
        "wall_s": big.usage.wall,
        "startup_wall_s": small.wall,
        "startup_cpu_s": small.cpu,
        "rss_mb": big.usage.maxrss_mb,
        "ok": big.ok,
    }


def sequential(bench: Bench) -> dict[str, dict[str, float]]:
    n = bench.config.seq_n
    print(f"sequential: n={n}, 0 ms latency", file=sys.stderr)
    with bench.server() as server:
        return alternate(
            bench.config.rounds, CLIENTS, lambda client: cpu_figures(bench, server, client, n)
        )


def concurrent(bench: Bench) -> dict[str, dict[str, float]]:
    cfg = bench.config
    print(
        f"concurrent: n={cfg.conc_n}, {cfg.latency * 1000:.0f} ms, c={cfg.conc_c}", file=sys.stderr
    )

    def one(client: str) -> dict[str, float]:
        sample = bench.run(client, server, cfg.conc_n, cfg.conc_c)
        return {
            "wall_s": sample.usage.wall,
            "send_s": sample.send_seconds,
            "cpu_ms_whole": sample.usage.cpu / cfg.conc_n * 1000,
            "ok": sample.ok,
        }

    with bench.server("--latency", str(cfg.latency)) as server:
        return alternate(cfg.rounds, CLIENTS, one)


def rate_limited(bench: Bench) -> list[dict[str, float]]:
    """runner alone against a server budget; a fresh server (and window) every round."""
    cfg = bench.config
    print(f"rate-limited: n={cfg.rl_n}, {cfg.rl_limit}/{cfg.rl_window:g} s", file=sys.stderr)
    rows = []
    for _ in range(cfg.rl_rounds):
        args = ("--rpm", str(cfg.rl_limit), "--window", str(cfg.rl_window))
        with bench.server(*args) as server:
            sample = bench.run("runner", server, cfg.rl_n, cfg.rl_c)
        elapsed = sample.send_seconds
        capacity = cfg.rl_limit * (1 + math.floor(elapsed / cfg.rl_window))
        served = sample.served.get("200", 0)
        rows.append(
            {
                "ok": sample.ok,
                "failed": sample.failed,
                "served_200": served,
                "served_429": sample.served.get("429", 0),
                "send_s": elapsed,
                "wall_s": sample.usage.wall,
                "ideal_s": cfg.rl_window * (math.ceil(cfg.rl_n / cfg.rl_limit) - 1),
                "budget_used": served / capacity,
            }
        )
    return rows


def structured(bench: Bench) -> dict[str, dict[str, float]]:
    n = bench.config.struct_n
    print(f"structured output: n={n}, 10-field json_schema", file=sys.stderr)
    variants = {
        "raw + json.loads + jsonschema": ("raw", True),
        "groq SDK + json.loads + jsonschema": ("groq", True),
        "runner, plain chat": ("runner", False),
        "runner, json_schema": ("runner", True),
        "runner, json_schema, cases": ("runner-cases", True),
    }

    def one(label: str) -> dict[str, float]:
        client, is_structured = variants[label]
        return cpu_figures(bench, server, client, n, structured=is_structured)

    with bench.server() as server:
        return alternate(bench.config.rounds, list(variants), one)


def startup(bench: Bench) -> dict[str, float]:
    cfg = bench.config
    print("start-up", file=sys.stderr)
    folder = bench.spec_dir(cfg.validate_n)
    commands = {
        "python -c pass": [bench.python, "-c", "pass"],
        "runner --help": [bench.runner, "--help"],
    }
    result = {
        name: median([run_child(argv).wall for _ in range(cfg.help_runs)])
        for name, argv in commands.items()
    }
    validate = [bench.runner, "validate", str(folder), "--quiet"]
    runs = [run_child(validate) for _ in range(3)]
    if any(run.returncode for run in runs):
        print(f"warning: runner validate failed: {runs[0].stderr[-500:]}", file=sys.stderr)
    result[f"runner validate ({cfg.validate_n} specs)"] = median([run.wall for run in runs])
    return result


def server_check(bench: Bench) -> dict[str, dict[str, float]]:
    """CPU the stub servers spend per request, under the raw client (the fastest load)."""
    n = bench.config.server_n
    print("server CPU check", file=sys.stderr)
    result = {}
    for name in SERVERS:
        server = Server(SERVERS[name], *SERVER_ARGS[name], python=bench.python)
        with server:
            cpu = server.cpu_seconds()
            sample = bench.run("raw", server, n)
            result[name] = {
                "server_cpu_ms": (server.cpu_seconds() - cpu) / n * 1000,
                "client_cpu_ms": sample.usage.cpu / n * 1000,
                "wall_s": sample.usage.wall,
            }
    return result


# ---- report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small n, one round")
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds (default 3)")
    parser.add_argument("--server", choices=sorted(SERVERS), default="bench")
    parser.add_argument("--json", type=Path, default=None, help="also save raw figures here")
    parser.add_argument(
        "--only-rate-limited", action="store_true", help="run and print only that scenario"
    )
    args = parser.parse_args()
    config = Config.quick(args.server) if args.quick else Config(server=args.server)
    if args.rounds:
        config = Config(**{**asdict(config), "rounds": args.rounds})
    # Byte-compile runner as a regular pip install does for every package; otherwise, with
    # PYTHONDONTWRITEBYTECODE set (as on our machines), each runner process compiles it again.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "runner")], check=True)
    if args.only_rate_limited:
        from report import rate_section

        with tempfile.TemporaryDirectory(prefix="runner-bench-") as work:
            rows = rate_limited(Bench(config, Path(work)))
        c = config
        print(rate_section(rows, c.rl_limit, c.rl_window, c.rl_n, c.rl_c))
        return
    with tempfile.TemporaryDirectory(prefix="runner-bench-") as work:
        results = run_all(Bench(config, Path(work)))
    from report import render

    print(render(config, results))
    if args.json:
        args.json.write_text(json.dumps({"config": asdict(config), **results}, indent=2))


def run_all(bench: Bench) -> dict[str, Any]:
    return {
        "server": server_check(bench),
        "sequential": sequential(bench),
        "concurrent": concurrent(bench),
        "rate_limited": rate_limited(bench),
        "structured": structured(bench),
        "startup": startup(bench),
        "cases_scale": cases_scale(bench),
    }


def cases_scale(bench: Bench) -> list[dict[str, float]]:
    """Peak memory and speed of one spec over a large CSV on the offline provider."""
    import cases_scale as scale

    rows = bench.config.scale_rows
    print(f"cases at scale: {', '.join(f'{n:,}' for n in rows)} rows, offline", file=sys.stderr)
    return [asdict(scale.measure(n, concurrency=8)) for n in rows]


if __name__ == "__main__":
    main()
