"""Streamed requests: CPU per request and time to first token, runner against the groq SDK.

    python bench/streaming.py [--n 100] [--rounds 3] [--words 200] [--processes 200]

One server (tests/openai_server.py) streams the same answer of ``--words`` words (about one
token each; three words per chunk, so about 70 chunks) to every client:

- **per request**, each client in a process of its own, the clients taking turns each round:
  raw urllib3 reading the chunked body and ``json.loads`` on each event (the floor), the groq
  SDK iterating ``create(stream=True)``, and runner's streamed send
  (``runner.send.stream_send.stream_once``: urllib3, the event decoder, the chunk assembler and
  timing). Time to first token is taken
  where each client's own code first sees answer text; CPU is ``time.process_time`` around
  the whole request, the stream read to its end.
- **whole process**: ``runner run`` of one spec with ``stream: true`` and a case per request
  (loading, rendering, sending, checking, saving records) against a child process that sends
  the same requests with the groq SDK; marginal CPU per request = (cpu_n - cpu_10) / (n - 10).

Prints markdown tables (medians of the rounds) on stdout; figures are in bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workload
from measure import Server, run_child

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

KEY_ENV = "BENCH_STREAM_KEY"
# One request: returns (seconds to the first answer text, CPU seconds this process spent until
# then, the answer text).
Client = Callable[[dict[str, Any]], tuple[float, float, str]]


def raw_client(root_url: str) -> Client:
    """urllib3, one HTTP chunk at a time, events split on blank lines: the floor."""
    import urllib3

    pool = urllib3.PoolManager(retries=False)
    url = f"{root_url}/v1/chat/completions"
    headers = {"Content-Type": "application/json", "Authorization": "Bearer k"}

    def send(body: dict[str, Any]) -> tuple[float, float, str]:
        started, cpu = time.perf_counter(), time.process_time()
        response = pool.request(
            "POST",
            url,
            body=json.dumps({**body, "stream": True}).encode(),
            headers=headers,
            preload_content=False,
        )
        first, first_cpu, parts, buffer = 0.0, 0.0, [], b""
        for piece in response.read_chunked():
            buffer += piece
            *events, buffer = buffer.split(b"\n\n")
            for event in events:
                data = event[len(b"data: ") :]
                if data == b"[DONE]":
                    continue
                for choice in json.loads(data)["choices"]:
                    text = choice["delta"].get("content")
                    if text:
                        if not first:
                            first = time.perf_counter() - started
                            first_cpu = time.process_time() - cpu
                        parts.append(text)
        response.release_conn()
        return first, first_cpu, "".join(parts)

    return send


def groq_client(root_url: str) -> Client:
    """The official groq SDK iterating create(stream=True)."""
    from groq import Groq

    client = Groq(api_key="k", base_url=root_url, max_retries=0)

    def send(body: dict[str, Any]) -> tuple[float, float, str]:
        started, cpu = time.perf_counter(), time.process_time()
        first, first_cpu, parts = 0.0, 0.0, []
        for chunk in client.chat.completions.create(**body, stream=True):
            if chunk.choices and chunk.choices[0].delta.content:
                if not first:
                    first = time.perf_counter() - started
                    first_cpu = time.process_time() - cpu
                parts.append(chunk.choices[0].delta.content)
        return first, first_cpu, "".join(parts)

    return send


def runner_client(root_url: str) -> Client:
    """runner's streamed send: the same code ``runner run`` uses for ``stream: true``."""
    from runner.providers.endpoints import Endpoint
    from runner.send.stream_send import stream_once
    from runner.send.transport import HttpClient, Timeouts

    http = HttpClient(Timeouts())
    endpoint = Endpoint("groq", f"{root_url}/v1")

    def send(body: dict[str, Any]) -> tuple[float, float, str]:
        started, cpu = time.perf_counter(), time.process_time()
        first = first_cpu = 0.0

        def on_text(text: str) -> None:
            nonlocal first, first_cpu
            if not first:
                first = time.perf_counter() - started
                first_cpu = time.process_time() - cpu

        payload = json.dumps({**body, "stream": True}, separators=(",", ":")).encode()
        answer = stream_once(http, endpoint, payload, Timeouts(), on_text)
        assert answer.completion is not None, answer.failure
        return first, first_cpu, answer.completion["choices"][0]["message"]["content"]

    return send


CLIENTS = {"raw urllib3 + json": raw_client, "groq SDK": groq_client, "runner": runner_client}


def client_run(name: str, root_url: str, n: int) -> dict[str, Any]:
    """One client's ``n`` requests, after one to warm up (run in a process of its own)."""
    send = CLIENTS[name](root_url)
    text = send(workload.request_body(0))[2]
    ttft, ttft_cpu = [], []
    started = time.process_time()
    for index in range(n):
        first, first_cpu, _ = send(workload.request_body(index))
        ttft.append(first * 1000.0)
        ttft_cpu.append(first_cpu * 1000.0)
    cpu = (time.process_time() - started) * 1000.0 / n
    return {"ttft": ttft, "ttft_cpu": ttft_cpu, "cpu_ms": cpu, "text": text}


def per_request(root_url: str, n: int, rounds: int) -> dict[str, dict[str, float]]:
    """Each client in a process of its own, the clients taking turns, ``rounds`` times."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in CLIENTS}
    names = list(CLIENTS)
    for round_number in range(rounds):
        # The order turns each round: a process right after the groq SDK's waits longer for
        # its first answers (measured: about 10 ms to headers), whoever it is.
        turn = round_number % len(names)
        for name in names[turn:] + names[:turn]:
            argv = [sys.executable, __file__, "--client", name, "--root-url", root_url]
            usage = run_child([*argv, "--n", str(n)])
            assert usage.returncode == 0, usage.stderr[-2000:]
            runs[name].append(usage.json())
        print(f"round {round_number + 1}/{rounds} done", file=sys.stderr)
    texts = {run["text"] for done in runs.values() for run in done}
    assert len(texts) == 1, "the clients did not get the same answer"
    figures = {}
    for name, done in runs.items():
        ttft = [t for run in done for t in run["ttft"]]
        figures[name] = {
            "ttft_median_ms": statistics.median(ttft),
            "ttft_p90_ms": statistics.quantiles(ttft, n=10)[-1],
            "ttft_cpu_ms": statistics.median(t for run in done for t in run["ttft_cpu"]),
            "cpu_ms": statistics.median(run["cpu_ms"] for run in done),
        }
    return figures


def whole_process(root_url: str, n: int, rounds: int, work: Path) -> dict[str, float]:
    """Marginal CPU per request of `runner run` (stream: true, cases) and a groq SDK process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNNER_")}
    env[KEY_ENV] = "k"
    runner = str(Path(sys.executable).parent / "runner")
    specs = {}
    for count in (10, n):
        spec = workload.write_cases_spec(work / f"cases-{count}", count)
        spec.write_text(spec.read_text() + "stream: true\n")
        specs[count] = spec

    def runner_cpu(count: int) -> float:
        out = tempfile.mkdtemp(dir=work)
        argv = [runner, "run", str(specs[count]), "--base-url", f"{root_url}/v1"]
        argv += ["--api-key-env", KEY_ENV, "--out", out, "--no-cache", "-c", "1", "-q", "--json"]
        usage = run_child(argv, {**env, "RUNNER_CACHE_DIR": out})
        assert usage.returncode == 0 and usage.json()["ok"] == count, usage.stderr[-2000:]
        return usage.cpu

    def sdk_cpu(count: int) -> float:
        code = (
            f"import sys; sys.path.insert(0, {str(BENCH)!r}); import streaming, workload; "
            f"send = streaming.groq_client({root_url!r}); "
            f"[send(workload.request_body(i)) for i in range({count})]"
        )
        usage = run_child([sys.executable, "-c", code], env)
        assert usage.returncode == 0, usage.stderr[-2000:]
        return usage.cpu

    figures: dict[str, list[float]] = {"runner": [], "groq SDK": []}
    for _ in range(rounds):
        for name, measure in (("runner", runner_cpu), ("groq SDK", sdk_cpu)):
            figures[name].append((measure(n) - measure(10)) * 1000.0 / (n - 10))
    return {name: statistics.median(values) for name, values in figures.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="requests per client per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--words", type=int, default=200, help="words in the streamed answer")
    parser.add_argument("--processes", type=int, default=200, help="n of the process runs")
    parser.add_argument("--client", choices=sorted(CLIENTS), help=argparse.SUPPRESS)
    parser.add_argument("--root-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:  # a child of per_request
        print(json.dumps(client_run(args.client, args.root_url, args.n)))
        return
    server_args = ["--no-record", "--content-words", str(args.words)]
    with Server(ROOT / "tests" / "openai_server.py", *server_args, python=sys.executable) as srv:
        requests = per_request(srv.root_url, args.n, args.rounds)
        with tempfile.TemporaryDirectory() as work:
            processes = whole_process(srv.root_url, args.processes, args.rounds, Path(work))
    floor, sdk = requests["raw urllib3 + json"], requests["groq SDK"]
    print(f"\n#### Per request: {args.n} x {args.rounds} streamed requests of {args.words} words\n")
    print(
        "| client | time to first token, median ms | p90 ms | added vs raw, ms | "
        "CPU until first token, ms | added vs raw, ms | CPU ms/request | vs groq SDK |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, row in requests.items():
        added = row["ttft_median_ms"] - floor["ttft_median_ms"]
        added_cpu = row["ttft_cpu_ms"] - floor["ttft_cpu_ms"]
        print(
            f"| {name} | {row['ttft_median_ms']:.3f} | {row['ttft_p90_ms']:.3f} | "
            f"{added:+.3f} | {row['ttft_cpu_ms']:.3f} | {added_cpu:+.3f} | "
            f"{row['cpu_ms']:.3f} | {row['cpu_ms'] / sdk['cpu_ms']:.2f}x |"
        )
    print(f"\n#### Whole process: marginal CPU per streamed request (n={args.processes} - 10)\n")
    print("| client | CPU ms/request | vs groq SDK |")
    print("|---|---|---|")
    for name, value in processes.items():
        print(f"| {name} | {value:.3f} | {value / processes['groq SDK']:.2f}x |")


if __name__ == "__main__":
    main()
