"""Send one streamed request and read its answer, or stream the offline provider's answer.

When a stream is sent again (runner/retry.py does the rounds, each through the rate limiter):
until the response's headers arrive, a streamed request is retried like any other (429, 408,
498, 5xx, dropped connections, with ``retry-after``). Once a 200 event stream has begun, a
stream that fails before its first token (it is dropped, stays silent past the idle timeout,
or sends an error event) is sent again, within the same number of retries and with the same
backoff. Once a token has arrived, a failure is final: the record fails with the reason and
keeps the text received so far, and the request is never sent again within the run, so no
answer is ever counted or shown twice. A stream that is not well-formed (an event that is not
JSON) is a broken server and is not retried either.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from runner.providers.endpoints import Endpoint
from runner.send.cutoff import ABANDONED, DEADLINE
from runner.send.offline_stream import (
    completion_chunks,
    event_stream,
    offline_delay,
    wants_usage_chunk,
)
from runner.send.stream import StreamFailure, StreamResult, StreamTiming, read_stream
from runner.send.transport import HttpClient, HttpResult, Timeouts

# Providers that report a stream's usage without being asked (Groq: in x_groq.usage); the
# others get stream_options.include_usage (Groq's API has rejected that field in the past).
USAGE_WITHOUT_ASKING = frozenset({"groq", "offline"})


@dataclass(frozen=True)
class StreamedAnswer:
    """How a streamed request went: ``result`` as for a whole answer (its ``text`` is the
    assembled completion as JSON), and the stream's timing, or its failure."""

    result: HttpResult
    completion: dict[str, Any] | None = None
    timing: StreamTiming | None = None
    failure: StreamFailure | None = None
    partial_text: str = ""
    retryable: bool = False  # failed before its first token: it may be sent again


def streaming_body(body: dict[str, Any], provider: str, stream: bool | None) -> dict[str, Any]:
    """The body to send: ``stream`` set by --stream/--no-stream (None keeps the spec's), and
    ``stream_options.include_usage`` added for a provider that needs it to report usage."""
    if stream is False:
        return {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
    if stream:
        body = {**body, "stream": True}
    if body.get("stream") is True and provider not in USAGE_WITHOUT_ASKING:
        body = {**body, "stream_options": body.get("stream_options", {"include_usage": True})}
    return body


def stream_once(
    client: HttpClient,
    endpoint: Endpoint,
    payload: bytes,
    timeouts: Timeouts,
    on_text: Callable[[str], None] | None = None,
) -> StreamedAnswer:
    """One attempt at a streamed request: its answer, or how it failed and whether the
    failure may be retried (see the module's retry rule). The whole attempt ends by
    ``--timeout``; its connection is closed on every way out but a stream that ended well."""
    started = time.perf_counter()
    with client.attempt() as cutoff:
        opened = client.open_stream(endpoint, payload)
        if opened.pieces is None:
            if opened.error is not None:
                failed = client.failed(cutoff, opened.error)
                return StreamedAnswer(replace(failed, headers=opened.headers))
            result = HttpResult(opened.status, opened.headers, opened.text, opened.attempts)
            return StreamedAnswer(result, timing=_whole_body_timing(opened.status, started))
        read: StreamResult | None = None
        try:
            read = read_stream(
                opened.pieces,
                started,
                time.perf_counter(),
                on_text,
                deadline=started + timeouts.read,
            )
        finally:
            opened.pieces.close(ended_well=read is not None and read.failure is None)
        failure = read.failure
        if failure is not None and cutoff.reason == ABANDONED:
            cut = client.failed(cutoff, "")
            return StreamedAnswer(replace(cut, headers=opened.headers), failure=failure)
        if failure is not None and (cutoff.reason == DEADLINE or failure.limit == "--timeout"):
            failure = StreamFailure("connection", client.deadline_message(), "--timeout")
    if failure is None:
        text = json.dumps(read.completion, ensure_ascii=False)
        result = HttpResult(200, opened.headers, text, opened.attempts)
        return StreamedAnswer(result, read.completion, read.timing)
    retryable = not read.delivered and failure.kind != "malformed"
    result = HttpResult(200, opened.headers, None, opened.attempts)
    return StreamedAnswer(
        result, None, read.timing, failure, read.partial_text, retryable=retryable
    )


def stream_offline(
    body: dict[str, Any], on_text: Callable[[str], None] | None = None
) -> StreamedAnswer:
    """The offline provider's answer, streamed through the same decoder and assembler."""
    from runner.send import offline  # only runs that use it pay for importing it

    started = time.perf_counter()
    chunks = completion_chunks(offline.complete(body), wants_usage_chunk(body))
    read = read_stream(event_stream(chunks, offline_delay()), started, started, on_text)
    result = HttpResult(200, {}, None, 1)
    return StreamedAnswer(result, read.completion, read.timing, read.failure, read.partial_text)


def _whole_body_timing(status: int | None, started: float) -> StreamTiming | None:
    """A server that ignored ``stream`` and answered 200 with one JSON body: no chunks, and the
    first token came with everything else."""
    if status != 200:
        return None
    total = round((time.perf_counter() - started) * 1000.0, 3)
    return StreamTiming(total, total, total, 0, None)
