"""A local server that speaks the OpenAI chat-completions wire format, with faults on demand.

Tests start it on 127.0.0.1 (see the ``openai_server`` fixture) and the benchmarks run it as a
process (``python tests/openai_server.py --latency 0.1`` prints ``PORT <n>``). It answers
``POST /v1/chat/completions`` with a well-formed completion built by the offline provider, so
JSON modes get schema-valid JSON and tool requests get valid tool calls.

Faults are queued with ``server.plan(...)`` and each one is used up by one HTTP request (one
attempt, so retries consume the next one). A plan may be limited to requests whose body
contains a marker string, so one spec of a run can misbehave while the others do not. Fault
names:

    ok                 a normal answer
    <status>           e.g. "429", "500", "503", "400", "401", "404": an OpenAI-shaped error
    slow               wait ``slow_seconds`` before sending headers (past the read timeout)
    reset              close the connection with a TCP reset before any answer
    drop_mid_body      send headers and half the body, then close the connection
    truncated_json     200 with a JSON body cut short
    wrong_content_type 200 with text/plain that is not JSON
    html_error         502 with an HTML error page (as proxies send)
    error_200          200 whose body is an ``error`` object
    missing_choices    200 with a completion that has no ``choices``
    large              200 with a completion whose content is ``large_bytes`` long
    reply:<json>       200 with this JSON object as the assistant message (content/tool_calls)
    redirect:<url>     307 to another URL
    retired            400 ``model_decommissioned``, as Groq answers a retired model
    no_credit          429 ``insufficient_quota``, as OpenAI answers an account without credit
    text_500           500 with a text/plain body (as some proxies send)
    multiline_400      400 whose error message spans several lines
    drip               200 with the whole answer's headers, then its body one byte every
                       ``drip_seconds`` (each read is quick; the whole answer never is)

A request with ``"stream": true`` is answered as an event stream, with its own faults: see
tests/stream_server.py.
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import sys
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import contextlib

import stream_server
from batch_server import BatchBackend
from provider_limits import ProviderLimits

from runner.send import offline


@dataclass
class Received:
    """One HTTP request as the server saw it."""

    path: str
    headers: dict[str, str]
    body: Any
    at: float


@dataclass
class Plan:
    faults: deque[str]
    marker: str | None = None


@dataclass
class Budget:
    """A requests-per-window budget, enforced with 429 and the x-ratelimit-* headers."""

    limit: int
    window: float
    sent: deque[float] = field(default_factory=deque)


class FakeOpenAI(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(
        self,
        port: int = 0,
        latency: float = 0.0,
        api_key: str | None = None,
        record: bool = True,
    ):
        super().__init__(("127.0.0.1", port), Handler)
        self.latency = latency
        self.api_key = api_key
        self.record = record
        self.models: list[str] = []  # what GET /v1/models lists
        self.slow_seconds = 3.0
        self.large_bytes = 4_000_000
        self.retry_after_ms = 50
        self.stream_delay = 0.0  # seconds between the chunks of a streamed answer
        self.drip_seconds = 0.2  # between the bytes of a "drip" answer
        self.closed_by_client = threading.Event()  # set by stream_error_then_wait
        self.content_words: int | None = None  # streamed answers of exactly this many words
        self.received: list[Received] = []
        self.statuses: Counter[int] = Counter()
        self.budget: Budget | None = None
        self.provider_limits: ProviderLimits | None = None  # Groq-style, per model
        self.retired: set[str] = set()  # models answered 400 model_decommissioned, always
        self._plans: list[Plan] = []
        self.batches = BatchBackend()  # /files and /batches (tests/batch_server.py)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # ---- control, for tests

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def count(self) -> int:
        return len(self.received)

    def plan(self, *faults: str, marker: str | None = None) -> None:
        """Queue faults, one per coming request (that contains ``marker``, if given)."""
        with self._lock:
            self._plans.append(Plan(deque(faults), marker))

    def limit_rate(self, limit: int, window: float) -> None:
        """Allow ``limit`` requests per ``window`` seconds; answer 429 beyond that."""
        self.budget = Budget(limit, window)

    def bodies_containing(self, text: str) -> list[Any]:
        return [r.body for r in self.received if text in json.dumps(r.body)]

    def start(self) -> FakeOpenAI:
        self._thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (a timeout test) closed the connection: not a server bug.
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)

    # ---- used by the handler

    def next_fault(self, raw_body: bytes) -> str:
        text = raw_body.decode("utf-8", errors="replace")
        with self._lock:
            for plan in self._plans:
                if plan.faults and (plan.marker is None or plan.marker in text):
                    return plan.faults.popleft()
        return "ok"

    def over_budget(self) -> tuple[bool, dict[str, str]]:
        budget = self.budget
        if budget is None:
            return False, {}
        with self._lock:
            now = time.monotonic()
            while budget.sent and budget.sent[0] <= now - budget.window:
                budget.sent.popleft()
            over = len(budget.sent) >= budget.limit
            if not over:
                budget.sent.append(now)
            reset = budget.sent[0] + budget.window - now if budget.sent else 0.0
            headers = {
                "x-ratelimit-limit-requests": str(budget.limit),
                "x-ratelimit-remaining-requests": str(budget.limit - len(budget.sent)),
                "x-ratelimit-reset-requests": f"{max(reset, 0.0):.3f}s",
            }
            if over:
                headers["retry-after-ms"] = str(max(int(reset * 1000), 1))
            return over, headers


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; without this, Nagle's algorithm holds the body
    # back until the client's delayed ACK (about 40 ms per keep-alive request).
    disable_nagle_algorithm = True
    server: FakeOpenAI

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def handle(self) -> None:
        # A client that gave up (read timeout, killed) has closed its end: the late answer has
        # nowhere to go. Without this, socketserver prints a traceback on stderr, which lands in
        # whatever test is capturing output at that moment.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            super().handle()

    def do_GET(self) -> None:
        if self.server.batches.handle(self):
            return
        if self.path == "/stats":
            with self.server._lock:
                counts = {str(k): v for k, v in self.server.statuses.items()}
            self._send_json(
                200, {"requests": sum(self.server.statuses.values()), "statuses": counts}
            )
        elif self.path.rstrip("/") == "/v1/models":
            key = self.server.api_key
            if key is not None and self.headers.get("Authorization") != f"Bearer {key}":
                error = _error("Invalid API Key", "invalid_request_error", "invalid_api_key")
                self._send_json(401, error)
                return
            listed = [{"id": m, "object": "model", "owned_by": "test"} for m in self.server.models]
            self._send_json(200, {"object": "list", "data": listed})
        else:
            self._send_json(404, _error("Unknown request URL", "invalid_request_error", None))

    def do_POST(self) -> None:
        if self.server.batches.handle(self):
            return
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        server = self.server
        if server.record:
            headers = {k.lower(): v for k, v in self.headers.items()}
            with server._lock:
                server.received.append(Received(self.path, headers, body, time.monotonic()))
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send_json(
                404,
                _error(
                    f"Unknown request URL: POST {self.path}", "invalid_request_error", "unknown_url"
                ),
            )
            return
        if (
            server.api_key is not None
            and self.headers.get("Authorization") != f"Bearer {server.api_key}"
        ):
            self._send_json(
                401, _error("Invalid API Key", "invalid_request_error", "invalid_api_key")
            )
            return
        if isinstance(body, dict) and body.get("model") in server.retired:
            self._answer("retired", body, {})
            return
        image_problem = _image_problem(body)
        if image_problem:
            self._send_json(400, _error(image_problem, "invalid_request_error", "invalid_image"))
            return
        over, limit_headers = server.over_budget()
        if over:
            self._send_json(429, _rate_limited(), limit_headers)
            return
        if server.provider_limits is not None and isinstance(body, dict):
            refusal, groq_headers = server.provider_limits.admit(body)
            if refusal is not None:
                self._send_json(refusal.status, refusal.body, refusal.headers)
                return
            limit_headers = {**limit_headers, **groq_headers}
        if server.latency:
            time.sleep(server.latency)
        self._answer(server.next_fault(raw), body if isinstance(body, dict) else {}, limit_headers)

    def _answer(self, fault: str, body: dict, headers: dict[str, str]) -> None:
        if body.get("stream") is True and stream_server.handles(fault):
            stream_server.answer(self, fault, body, _reply(body, fault))
        elif fault == "ok":
            self._send_json(200, offline.complete(body), headers)
        elif fault.isdigit():
            self._send_status(int(fault), headers)
        elif fault == "slow":
            time.sleep(self.server.slow_seconds)
            self._send_json(200, offline.complete(body), headers)
        elif fault == "reset":
            self._reset_connection()
        elif fault == "drop_mid_body":
            data = json.dumps(offline.complete(body)).encode()
            self._send_head(200, "application/json", len(data), headers)
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self._reset_connection()
        elif fault == "truncated_json":
            self._send_bytes(
                200, "application/json", json.dumps(offline.complete(body))[:40].encode()
            )
        elif fault == "wrong_content_type":
            self._send_bytes(200, "text/plain", b"Hello! I am not JSON.")
        elif fault == "html_error":
            page = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
            self._send_bytes(502, "text/html", page)
        elif fault == "error_200":
            self._send_json(
                200,
                _error(
                    "The server had an error while processing your request.", "server_error", None
                ),
            )
        elif fault == "missing_choices":
            answer = offline.complete(body)
            del answer["choices"]
            self._send_json(200, answer)
        elif fault == "large":
            answer = offline.complete(body)
            answer["choices"][0]["message"] = {
                "role": "assistant",
                "content": "x" * self.server.large_bytes,
            }
            self._send_json(200, answer)
        elif fault.startswith("reply:"):
            self._send_json(200, _reply(body, fault))
        elif fault == "drip":
            data = json.dumps(offline.complete(body)).encode()
            self._send_head(200, "application/json", len(data), headers)
            self.wfile.flush()
            for byte in data:
                time.sleep(self.server.drip_seconds)
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
        elif fault == "retired":
            model = body.get("model")
            message = (
                f"The model `{model}` has been decommissioned and is no longer supported. "
                "Please refer to https://console.groq.com/docs/deprecations for a "
                "recommendation on which model to use instead."
            )
            self._send_json(400, _error(message, "invalid_request_error", "model_decommissioned"))
        elif fault == "no_credit":
            message = "You exceeded your current quota, please check your plan and billing details."
            self._send_json(429, _error(message, "insufficient_quota", "insufficient_quota"))
        elif fault == "text_500":
            text = b"upstream connect error or disconnect/reset before headers. reset: overflow"
            self._send_bytes(500, "text/plain", text)
        elif fault == "multiline_400":
            message = "Invalid request:\n  - messages.0.content: too long\n  - temperature: > 2"
            self._send_json(400, _error(message, "invalid_request_error", None))
        elif fault.startswith("redirect:"):
            self._send_bytes(307, "text/plain", b"moved", {"Location": fault[len("redirect:") :]})
        else:
            raise ValueError(f"unknown fault {fault!r}")

    def _send_status(self, status: int, headers: dict[str, str]) -> None:
        if status == 429:
            headers = {
                **headers,
                "retry-after-ms": str(self.server.retry_after_ms),
                "retry-after": "1",
            }
            self._send_json(429, _rate_limited(), headers)
        elif status == 401:
            self._send_json(
                401, _error("Invalid API Key", "invalid_request_error", "invalid_api_key")
            )
        elif status == 404:
            message = "The model does not exist or you do not have access to it."
            self._send_json(404, _error(message, "invalid_request_error", "model_not_found"))
        elif 400 <= status < 500:
            self._send_json(
                status,
                _error(
                    "'messages' must contain at least one message", "invalid_request_error", None
                ),
            )
        else:
            self._send_json(status, _error("Internal Server Error", "internal_server_error", None))

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send_bytes(status, "application/json", json.dumps(payload).encode(), headers)

    def _send_bytes(
        self, status: int, content_type: str, data: bytes, headers: dict[str, str] | None = None
    ) -> None:
        self._send_head(status, content_type, len(data), headers or {})
        self.wfile.write(data)

    def _send_head(
        self, status: int, content_type: str, length: int, headers: dict[str, str]
    ) -> None:
        if self.command == "POST":
            with self.server._lock:
                self.server.statuses[status] += 1
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _reset_connection(self) -> None:
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()


def _reply(body: dict, fault: str) -> dict[str, Any]:
    """The offline answer to ``body``; for ``reply:<json>``, with that assistant message."""
    answer = offline.complete(body)
    if fault.startswith("reply:"):
        message = {"role": "assistant", "content": None, **json.loads(fault[len("reply:") :])}
        answer["choices"][0]["message"] = message
        answer["choices"][0]["finish_reason"] = message.pop(
            "finish_reason", "tool_calls" if message.get("tool_calls") else "stop"
        )
    return answer


def _error(message: str, kind: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "code": code}}


def _image_problem(body: Any) -> str | None:
    """Why an image part of the request is unusable (as a provider would refuse it), or None:
    a data: URL must be base64 of a PNG, JPEG, WebP or GIF that its media type names."""
    import base64
    import binascii

    magic = {
        "image/png": b"\x89PNG",
        "image/jpeg": b"\xff\xd8\xff",
        "image/gif": b"GIF8",
        "image/webp": b"RIFF",
    }
    messages = body.get("messages") if isinstance(body, dict) else None
    for message in messages if isinstance(messages, list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        for part in content if isinstance(content, list) else []:
            if not isinstance(part, dict) or part.get("type") != "image_url":
                continue
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else None
            if not isinstance(url, str) or not url.startswith(("data:", "https://", "http://")):
                return "image_url.url must be an https URL or a data: URL"
            if not url.startswith("data:"):
                continue
            media_type, _, data = url[len("data:") :].partition(";base64,")
            try:
                raw = base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError):
                return "the image's data: URL is not valid base64"
            if media_type not in magic or not raw.startswith(magic[media_type]):
                return f"the image data is not the {media_type} its data: URL names"
    return None


def _rate_limited() -> dict[str, Any]:
    message = "Rate limit reached for model on requests per minute (RPM). Please try again later."
    return _error(message, "requests", "rate_limit_exceeded")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--rpm", type=int, default=None, help="requests allowed per --window")
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--no-record", action="store_true", help="do not keep received requests")
    parser.add_argument("--stream-delay", type=float, default=0.0, help="seconds between chunks")
    parser.add_argument("--content-words", type=int, default=None, help="streamed answer length")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME",
        help="answer the next request with this fault (repeatable, used in order): "
        "500, 503, 429, reset, drop_mid_body, truncated_json, slow, ... (see the docstring)",
    )
    args = parser.parse_args()
    server = FakeOpenAI(args.port, args.latency, args.api_key, record=not args.no_record)
    server.stream_delay, server.content_words = args.stream_delay, args.content_words
    if args.rpm:
        server.limit_rate(args.rpm, args.window)
    if args.fault:
        server.plan(*args.fault)
    print(f"PORT {server.port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
