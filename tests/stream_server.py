"""Streamed answers of the test server (tests/openai_server.py), and the faults of a stream.

A request with ``"stream": true`` gets its completion as ``chat.completion.chunk`` events over
HTTP/1.1 chunked encoding, one event per HTTP chunk, ``server.stream_delay`` seconds apart.
Usage comes in ``x_groq.usage`` of the last chunk (Groq), or in an extra chunk with no choices
when the request asks for ``stream_options.include_usage`` (OpenAI). The events are framed here,
independently of runner's own encoder, in every way the event-stream format allows.

Stream faults (planned like the others, with ``server.plan``):

    stream_drop_after:<n>  n chunks, then a TCP reset (content already delivered)
    stream_drop_before     the role chunk (no token yet), then a TCP reset
    stream_no_done         every chunk, then the body ends without ``data: [DONE]``
    stream_cut             half the chunks, none with a finish_reason, then a clean end
    stream_error_event     two chunks, then ``event: error`` with an error payload
    stream_error_payload   two chunks, then ``data: {"error": ...}``
    stream_error_first     ``data: {"error": ...}`` before any token
    stream_error_then_wait two chunks, then ``event: error``, then the connection is held open
                           until the client closes it (``server.closed_by_client`` is set)
    stream_stall           the role chunk, then silence for ``slow_seconds``
    stream_ignored         200 with the whole answer as one JSON body (``stream`` ignored)
    stream_bad_json        the role chunk, then an event whose data is not JSON
    stream_framing:<kind>  the whole answer framed as: crlf, cr (line ends); comments (``: ping``
                           lines, ``id:``, ``retry:`` and ``event: message`` fields); multiline
                           (each JSON split over several ``data:`` lines); split (every write
                           cut in 1-7 byte pieces, each its own HTTP chunk, so boundaries fall
                           inside lines and UTF-8 characters); close (no chunked encoding: the
                           body ends when the server closes the connection)
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

from runner.send.offline_stream import completion_chunks, wants_usage_chunk

WORDS = "the quick brown fox jumps over a lazy dog while rivers run to the sea"


def handles(fault: str) -> bool:
    return fault == "ok" or fault.startswith(("stream_", "reply:"))


def answer(handler: Any, fault: str, body: dict[str, Any], completion: dict[str, Any]) -> None:
    """Send ``completion`` streamed, with ``fault``."""
    server = handler.server
    if server.content_words:
        words = WORDS.split()
        text = " ".join(words[i % len(words)] for i in range(server.content_words))
        completion["choices"][0]["message"] = {"role": "assistant", "content": text}
        completion["usage"]["completion_tokens"] = server.content_words
    if fault == "stream_ignored":
        handler._send_json(200, completion)
        return
    chunks = completion_chunks(completion, wants_usage_chunk(body))
    kind = fault.partition(":")[2] if fault.startswith("stream_framing:") else ""
    writer = _Writer(handler, chunked=kind != "close", split=kind == "split")
    frame = _framer(kind)
    if fault == "stream_cut":
        chunks = [c for c in chunks[: len(chunks) // 2] if "x_groq" not in c]
        for chunk in chunks:
            for choice in chunk["choices"]:
                choice["finish_reason"] = None
    stop = len(chunks)
    if fault.startswith("stream_drop_after:"):
        stop = int(fault.partition(":")[2])
    elif fault in ("stream_drop_before", "stream_stall", "stream_bad_json", "stream_error_first"):
        stop = 0 if fault == "stream_error_first" else 1
    elif fault in ("stream_error_event", "stream_error_payload", "stream_error_then_wait"):
        stop = 3
    for number, chunk in enumerate(chunks[:stop]):
        if number and server.stream_delay:
            time.sleep(server.stream_delay)
        writer.write(frame(json.dumps(chunk, ensure_ascii=False)))
    error = {"error": {"message": "The model is overloaded.", "type": "server_error"}}
    if fault.startswith("stream_drop") or fault == "stream_stall":
        if fault == "stream_stall":
            time.sleep(server.slow_seconds)
        handler._reset_connection()
        return
    if fault in ("stream_error_event", "stream_error_then_wait"):
        writer.write(b"event: error\ndata: " + json.dumps(error).encode() + b"\n\n")
    if fault == "stream_error_then_wait":
        _wait_for_close(handler, seconds=30.0)
        return
    elif fault in ("stream_error_payload", "stream_error_first"):
        writer.write(frame(json.dumps(error)))
    elif fault == "stream_bad_json":
        writer.write(frame('{"id": "broken", "choices": ['))
    elif fault not in ("stream_no_done", "stream_cut"):
        writer.write(frame("[DONE]"))
    writer.end()


def _framer(kind: str) -> Any:
    """How one event's data is framed, for a ``stream_framing`` kind."""
    end = {"crlf": "\r\n", "cr": "\r"}.get(kind, "\n")

    def frame(data: str) -> bytes:
        if kind == "comments":
            text = f": ping\nid: {random.randrange(10**6)}\nretry: 3000\nevent: message\n"
            text += f"data: {data}\n\n"
        elif kind == "multiline":
            # Indented JSON has line breaks only between tokens: one data line per JSON line.
            lines = json.dumps(json.loads(data), indent=1).split("\n") if data[0] == "{" else [data]
            text = "".join(f"data:{line}\n" for line in lines) + "\n"
        else:
            text = f"data: {data}{end}{end}"
        return text.encode("utf-8")

    return frame


class _Writer:
    """Writes a body in HTTP/1.1 chunks (or raw, closing the connection at the end)."""

    def __init__(self, handler: Any, chunked: bool, split: bool):
        self.handler, self.chunked, self.split = handler, chunked, split
        with handler.server._lock:
            handler.server.statuses[200] += 1
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream; charset=utf-8")
        handler.send_header("Cache-Control", "no-cache")
        if chunked:
            handler.send_header("Transfer-Encoding", "chunked")
        else:
            handler.send_header("Connection", "close")
            handler.close_connection = True
        handler.end_headers()

    def write(self, data: bytes) -> None:
        pieces = [data]
        if self.split:
            pieces, start = [], 0
            while start < len(data):
                step = random.randint(1, 7)
                pieces.append(data[start : start + step])
                start += step
        for piece in pieces:
            if self.chunked:
                piece = b"%x\r\n%s\r\n" % (len(piece), piece)
            self.handler.wfile.write(piece)

    def end(self) -> None:
        if self.chunked:
            self.handler.wfile.write(b"0\r\n\r\n")


def _wait_for_close(handler: Any, seconds: float) -> None:
    """Hold the connection open until the client closes it (or ``seconds`` pass)."""
    handler.wfile.flush()
    handler.connection.settimeout(seconds)
    try:
        while handler.connection.recv(4096):
            pass
    except OSError:
        return
    handler.server.closed_by_client.set()
    handler.close_connection = True
