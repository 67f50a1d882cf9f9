"""Streamed answers of the offline provider (and the test server): a completion cut in chunks.

``completion_chunks`` turns a ``chat.completion`` into the ``chat.completion.chunk`` objects a
provider streams for it: a first chunk with the role, then a few words of text (or reasoning,
or tool-call arguments) per chunk, then the finish reason; usage comes Groq's way, in the last
chunk's ``x_groq.usage``, or OpenAI's way, in an extra chunk with no choices, when the request
asked for ``stream_options: {include_usage: true}``. Assembling the chunks gives the completion
back. ``event_stream`` frames them as server-sent events, ending with ``data: [DONE]``.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterable, Iterator
from typing import Any

WORDS_PER_CHUNK = 3
ARGUMENT_CHARS_PER_CHUNK = 16
DELAY_ENV = "RUNNER_OFFLINE_CHUNK_DELAY"
_WORD = re.compile(r"\s*\S+|\s+")


def wants_usage_chunk(body: dict[str, Any]) -> bool:
    """Whether the request asked for OpenAI's final usage chunk."""
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def completion_chunks(
    completion: dict[str, Any], include_usage: bool = False, words: int = WORDS_PER_CHUNK
) -> list[dict[str, Any]]:
    """The chunks a provider streams for ``completion``."""
    head = {
        "id": completion.get("id"),
        "object": "chat.completion.chunk",
        "created": completion.get("created"),
        "model": completion.get("model"),
        "system_fingerprint": completion.get("system_fingerprint"),
    }
    if include_usage:
        head["usage"] = None

    def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**head, "choices": [choice]}

    chunks: list[dict[str, Any]] = []
    for choice in completion.get("choices") or []:
        index, message = choice.get("index", 0), choice.get("message") or {}
        content = message.get("content")
        role = message.get("role", "assistant")
        chunks.append(chunk(index, {"role": role, "content": "" if content is not None else None}))
        for key in ("reasoning", "content"):
            text = message.get(key)
            if isinstance(text, str):
                chunks.extend(chunk(index, {key: piece}) for piece in _pieces(text, words))
        for number, call in enumerate(message.get("tool_calls") or []):
            function = call.get("function") or {}
            first = {"index": number, "id": call.get("id"), "type": call.get("type", "function")}
            first["function"] = {"name": function.get("name"), "arguments": ""}
            chunks.append(chunk(index, {"tool_calls": [first]}))
            arguments = function.get("arguments") or ""
            for start in range(0, len(arguments), ARGUMENT_CHARS_PER_CHUNK):
                piece = arguments[start : start + ARGUMENT_CHARS_PER_CHUNK]
                call_delta = {"index": number, "function": {"arguments": piece}}
                chunks.append(chunk(index, {"tool_calls": [call_delta]}))
        chunks.append(chunk(index, {}, choice.get("finish_reason")))
    usage = completion.get("usage")
    if include_usage:
        chunks.append({**head, "choices": [], "usage": usage})
    elif chunks and usage is not None:
        chunks[-1]["x_groq"] = {"usage": usage}
    return chunks


def _pieces(text: str, words: int) -> Iterator[str]:
    found = _WORD.findall(text)
    for start in range(0, len(found), words):
        yield "".join(found[start : start + words])


def event_stream(chunks: Iterable[dict[str, Any]], delay: float = 0.0) -> Iterator[bytes]:
    """The chunks as server-sent events, ``delay`` seconds apart, then ``data: [DONE]``."""
    for number, chunk in enumerate(chunks):
        if delay and number:
            time.sleep(delay)
        text = json.dumps(chunk, ensure_ascii=False, separators=(",", ":"))
        yield b"data: " + text.encode("utf-8") + b"\n\n"
    yield b"data: [DONE]\n\n"


def offline_delay() -> float:
    """Seconds between the offline provider's chunks: ``$RUNNER_OFFLINE_CHUNK_DELAY``, else 0."""
    try:
        return max(float(os.environ.get(DELAY_ENV) or 0.0), 0.0)
    except ValueError:
        return 0.0
