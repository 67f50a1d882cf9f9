"""A fast local OpenAI-compatible server for the benchmarks: asyncio, HTTP/1.1 keep-alive.

It answers ``POST .../chat/completions`` with a chat.completion built once per distinct request
shape (model, response_format, tools) by runner's offline provider and then replayed, so
structured-output requests get schema-valid JSON and the server spends almost no CPU per request.
``GET /stats`` returns ``{"requests": n, "statuses": {"200": n, "429": m}}``. Optional per-request
latency and a requests-per-window budget enforced with 429, ``retry-after-ms`` and the
``x-ratelimit-*`` headers, like ``tests/openai_server.py``.

Run: ``python bench/server.py --port 0 --latency 0.1 [--rpm N --window S]``; prints ``PORT <n>``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import contextlib

from runner.send import offline

REASONS = {200: "OK", 404: "Not Found", 429: "Too Many Requests", 400: "Bad Request"}


@dataclass
class Budget:
    """A sliding-window budget of ``limit`` requests per ``window`` seconds."""

    limit: int
    window: float
    sent: deque[float] = field(default_factory=deque)

    def take(self) -> tuple[bool, dict[str, str]]:
        """Spend one request if the window allows it; return (allowed, rate-limit headers)."""
        now = time.monotonic()
        while self.sent and self.sent[0] <= now - self.window:
            self.sent.popleft()
        allowed = len(self.sent) < self.limit
        if allowed:
            self.sent.append(now)
        reset = max(self.sent[0] + self.window - now, 0.0) if self.sent else 0.0
        headers = {
            "x-ratelimit-limit-requests": str(self.limit),
            "x-ratelimit-remaining-requests": str(self.limit - len(self.sent)),
            "x-ratelimit-reset-requests": f"{reset:.3f}s",
        }
        if not allowed:
            headers["retry-after-ms"] = str(max(int(reset * 1000), 1))
        return allowed, headers


@dataclass
class State:
    """Server settings, counters and the cache of canned answers."""

    latency: float = 0.0
    budget: Budget | None = None
    statuses: Counter[int] = field(default_factory=Counter)
    answers: dict[str, bytes] = field(default_factory=dict)

    def answer_for(self, raw: bytes) -> bytes:
        """The canned completion for this request's shape, built on first use."""
        body = json.loads(raw)
        key = json.dumps(
            [body.get("model"), body.get("response_format"), body.get("tools")], sort_keys=True
        )
        answer = self.answers.get(key)
        if answer is None:
            answer = json.dumps(offline.complete(body)).encode()
            self.answers[key] = answer
        return answer


def response_bytes(status: int, payload: bytes, headers: dict[str, str] | None = None) -> bytes:
    """A whole HTTP/1.1 response with a JSON body."""
    lines = [
        f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}",
        "Content-Type: application/json",
        f"Content-Length: {len(payload)}",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def rate_limited() -> bytes:
    message = "Rate limit reached for model on requests per minute (RPM). Please try again later."
    error = {"error": {"message": message, "type": "requests", "code": "rate_limit_exceeded"}}
    return json.dumps(error).encode()


async def answer_post(state: State, path: str, raw: bytes) -> bytes:
    """Answer one POST: 404 off the endpoint, 429 over budget, else the canned completion."""
    if not path.rstrip("/").endswith("/chat/completions"):
        state.statuses[404] += 1
        return response_bytes(404, b'{"error": {"message": "Unknown request URL"}}')
    headers: dict[str, str] = {}
    if state.budget is not None:
        allowed, headers = state.budget.take()
        if not allowed:
            state.statuses[429] += 1
            return response_bytes(429, rate_limited(), headers)
    if state.latency:
        await asyncio.sleep(state.latency)
    state.statuses[200] += 1
    return response_bytes(200, state.answer_for(raw), headers)


def stats(state: State) -> bytes:
    counts = {str(status): n for status, n in state.statuses.items()}
    return json.dumps({"requests": sum(state.statuses.values()), "statuses": counts}).encode()


def parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    """Method, path and lower-cased headers of a request head."""
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    method, path, _ = request_line.split(" ", 2)
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    return method, path, headers


async def serve_connection(
    state: State, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Serve keep-alive requests on one connection until the client closes it."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            method, path, headers = parse_head(head[:-4])
            raw = await reader.readexactly(int(headers.get("content-length") or 0))
            if method == "POST":
                writer.write(await answer_post(state, path, raw))
            elif path == "/stats":
                writer.write(response_bytes(200, stats(state)))
            else:
                writer.write(response_bytes(404, b'{"error": {"message": "not found"}}'))
            await writer.drain()
            if headers.get("connection", "").lower() == "close":
                break
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def serve(state: State, port: int) -> None:
    server = await asyncio.start_server(
        lambda r, w: serve_connection(state, r, w), "127.0.0.1", port, backlog=1024
    )
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--rpm", type=int, default=None, help="requests allowed per --window")
    parser.add_argument("--window", type=float, default=60.0)
    args = parser.parse_args()
    budget = Budget(args.rpm, args.window) if args.rpm else None
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(State(latency=args.latency, budget=budget), args.port))


if __name__ == "__main__":
    main()
