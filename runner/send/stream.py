"""Streamed chat completions: a server-sent event stream in, one ``chat.completion`` out.

Three parts, each usable on its own:

- ``EventDecoder`` turns bytes, cut anywhere (inside a line, a UTF-8 character or a field
  name), into whole events, following the WHATWG event-stream rules: ``\\n``, ``\\r\\n`` and
  ``\\r`` line ends, ``:`` comment lines, ``event``/``id``/``retry`` fields, several ``data``
  lines joined with ``\\n``, an event dispatched on its blank line, an unfinished one dropped.
- ``ChunkAssembler`` merges ``chat.completion.chunk`` objects into the ``chat.completion`` a
  non-streamed request returns: text fields concatenated, tool calls merged by index, role and
  finish reason per choice, usage from the last chunk (OpenAI's ``usage`` or Groq's
  ``x_groq.usage``).
- ``read_stream`` runs both over a body as it arrives and times it (first token, total).

A stream ends well at ``data: [DONE]``, or at the end of the body once every choice has a
finish reason (some servers leave ``[DONE]`` out). Anything else (an error event, an
``{"error": ...}`` payload, an event that is not JSON, a body that stops before the answer is
complete, a dropped connection) is a ``StreamFailure`` with its kind and a sentence.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from runner.errors import plural

DONE = "[DONE]"
MAX_LINE_BYTES = 16 * 1024 * 1024
_BOM = b"\xef\xbb\xbf"
# Top-level chunk fields that are not copied as they are into the assembled completion.
_CHUNK_ONLY = frozenset({"object", "choices", "usage", "x_groq", "obfuscation"})


@dataclass(frozen=True)
class Event:
    """One dispatched server-sent event (``event`` is None for the default "message")."""

    data: str
    event: str | None = None
    id: str | None = None
    retry: int | None = None


class StreamFailure(Exception):
    """A stream that did not end in a whole answer: ``kind`` is a record error kind."""

    def __init__(self, kind: str, message: str, limit: str | None = None):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.limit = limit  # the option whose limit ended it: "--timeout", "--idle-timeout"


class EventDecoder:
    """Incremental event-stream decoder: ``feed`` bytes as they come, get whole events."""

    def __init__(self) -> None:
        # The unfinished last line, as the pieces it came in: joined once, when it ends, so a
        # long line cut into many pieces costs its length, not its length squared.
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._started = False
        self._skip_lf = False  # the last piece ended in "\r": a "\n" next belongs to it
        self._data: list[str] = []
        self._event: str | None = None
        self._retry: int | None = None
        self._last_id: str | None = None

    def feed(self, data: bytes) -> list[Event]:
        """The events completed by ``data``."""
        if not data:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if data[:1] == b"\n":
                data = data[1:]
        if not self._started:
            data = self._after_bom(data)
        if not data:
            return []
        if b"\n" not in data and b"\r" not in data:
            self._keep(data)
            return []
        buffer = b"".join((*self._pending, data)) if self._pending else data
        self._pending, self._pending_size = [], 0
        lines = buffer.splitlines(keepends=True)
        if lines[-1][-1:] not in (b"\n", b"\r"):
            self._keep(lines.pop())
        events: list[Event] = []
        for line in lines:
            text = line[:-2] if line[-2:] == b"\r\n" else line[:-1]
            event = self._line(text.decode("utf-8", errors="replace"))
            if event is not None:
                events.append(event)
        self._skip_lf = not self._pending and bool(lines) and lines[-1][-1:] == b"\r"
        return events

    def _after_bom(self, data: bytes) -> bytes:
        """``data`` without the byte-order mark the stream may start with (b"" while the
        first bytes could still be one)."""
        head = b"".join((*self._pending, data))
        if len(head) < len(_BOM) and _BOM.startswith(head):
            self._pending, self._pending_size = [head], len(head)
            return b""
        self._started = True
        self._pending, self._pending_size = [], 0
        return head[len(_BOM) :] if head.startswith(_BOM) else head

    def _keep(self, piece: bytes) -> None:
        """Hold a piece of a line that has not ended yet."""
        self._pending.append(piece)
        self._pending_size += len(piece)
        if self._pending_size > MAX_LINE_BYTES:
            raise StreamFailure(
                "malformed", f"a line of the event stream is longer than {MAX_LINE_BYTES} bytes"
            )

    def close(self) -> bool:
        """End of the body: True when an event was left unfinished (and so dropped)."""
        unfinished = bool(self._data) or bool(b"".join(self._pending).strip())
        self._pending, self._pending_size = [], 0
        self._data, self._event = [], None
        return unfinished

    def _line(self, line: str) -> Event | None:
        if not line:
            if not self._data:
                self._event = None
                return None
            event = Event("\n".join(self._data), self._event, self._last_id, self._retry)
            self._data, self._event, self._retry = [], None, None
            return event
        if line[0] == ":":
            return None
        name, colon, value = line.partition(":")
        if colon and value[:1] == " ":
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)
        return None


@dataclass
class _Choice:
    role: str | None = None
    text: dict[str, list[str]] = field(default_factory=dict)  # content, reasoning, refusal...
    saw_content: bool = False
    tool_calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    other: dict[str, Any] = field(default_factory=dict)
    lists: dict[str, list[Any]] = field(default_factory=dict)  # list fields, extended in place
    logprobs: dict[str, list[Any]] | None = None
    finish_reason: str | None = None


class ChunkAssembler:
    """Merges ``chat.completion.chunk`` objects into one ``chat.completion``."""

    def __init__(self) -> None:
        self.chunks = 0
        self.produced = False  # a token (text, reasoning or tool-call piece) has arrived
        self._top: dict[str, Any] = {}
        self._choices: dict[int, _Choice] = {}
        self._usage: Any = None
        self._groq_usage: Any = None
        self._groq: dict[str, Any] = {}

    def add(self, chunk: Any) -> str:
        """Take one chunk; return the new text of the first choice (for a live display)."""
        if not isinstance(chunk, dict):
            raise StreamFailure("malformed", "an event of the stream is not a JSON object")
        if chunk.get("error"):
            raise StreamFailure("provider", _error_text(chunk["error"]))
        self.chunks += 1
        for key, value in chunk.items():
            if key not in _CHUNK_ONLY and value is not None and key not in self._top:
                self._top[key] = value
        if chunk.get("usage") is not None:
            self._usage = chunk["usage"]
        groq = chunk.get("x_groq")
        if isinstance(groq, dict):
            self._take_groq(groq)
        choices = chunk.get("choices") or []
        if not isinstance(choices, list):
            raise StreamFailure("malformed", "a chunk's 'choices' is not a list")
        shown = ""
        for entry in choices:
            if not isinstance(entry, dict):
                raise StreamFailure("malformed", "a chunk's choice is not a JSON object")
            index = entry.get("index", 0)
            if not isinstance(index, int):
                raise StreamFailure("malformed", "a chunk's choice has no whole-number index")
            choice = self._choices.get(index)
            if choice is None:
                choice = self._choices[index] = _Choice()
            text = self._delta(choice, entry.get("delta") or {})
            if index == 0:
                shown = text
            if entry.get("finish_reason") is not None:
                choice.finish_reason = entry["finish_reason"]
            if entry.get("logprobs"):
                _add_logprobs(choice, entry["logprobs"])
        return shown

    def _take_groq(self, groq: dict[str, Any]) -> None:
        if groq.get("error"):
            raise StreamFailure("provider", f"the provider stopped the stream: {groq['error']}")
        if groq.get("usage") is not None:
            self._groq_usage = groq["usage"]
        for key, value in groq.items():
            if key != "usage" and value is not None:
                self._groq.setdefault(key, value)

    def _delta(self, choice: _Choice, delta: Any) -> str:
        if not isinstance(delta, dict):
            raise StreamFailure("malformed", "a chunk's delta is not a JSON object")
        content = ""
        for key, value in delta.items():
            if value is None:
                continue
            if key == "role":
                choice.role = value
            elif key == "tool_calls":
                self._tool_calls(choice, value)
            elif isinstance(value, str):
                choice.text.setdefault(key, []).append(value)
                if key == "content":
                    choice.saw_content = True
                    content = value
                if value:
                    self.produced = True
            elif isinstance(value, list):
                merged = choice.lists.get(key)
                if merged is None:
                    choice.lists[key] = merged = []
                    choice.other[key] = merged
                merged.extend(value)
            else:
                choice.other[key] = value
                choice.lists.pop(key, None)
        return content

    def _tool_calls(self, choice: _Choice, deltas: Any) -> None:
        if not isinstance(deltas, list):
            raise StreamFailure("malformed", "a chunk's 'tool_calls' is not a list")
        for delta in deltas:
            if not isinstance(delta, dict):
                raise StreamFailure("malformed", "a streamed tool call is not a JSON object")
            index = delta.get("index", len(choice.tool_calls))
            function = delta.get("function") or {}
            if not isinstance(index, int) or not isinstance(function, dict):
                raise StreamFailure("malformed", "a streamed tool call has no index or function")
            call = choice.tool_calls.setdefault(index, {"id": None, "type": None, "name": None})
            call.setdefault("arguments", [])
            for key in ("id", "type"):
                if delta.get(key) and not call[key]:
                    call[key] = delta[key]
            if function.get("name") and not call["name"]:
                call["name"] = function["name"]
                self.produced = True
            arguments = function.get("arguments")
            if arguments:
                if not isinstance(arguments, str):
                    raise StreamFailure(
                        "malformed", "a streamed tool call's arguments are not text"
                    )
                call["arguments"].append(arguments)
                self.produced = True

    def complete(self) -> bool:
        """Whether every choice has a finish reason (the answer is whole)."""
        return bool(self._choices) and all(c.finish_reason for c in self._choices.values())

    def partial_text(self) -> str:
        """The first choice's text so far (kept in a failed record)."""
        choice = self._choices.get(0)
        return "".join(choice.text.get("content", [])) if choice else ""

    def result(self) -> dict[str, Any]:
        """The assembled ``chat.completion``, shaped like a non-streamed answer."""
        top = self._top
        completion: dict[str, Any] = {
            "id": top.get("id"),
            "object": "chat.completion",
            "created": top.get("created"),
            "model": top.get("model"),
            "choices": [_choice_json(i, self._choices[i]) for i in sorted(self._choices)],
            "usage": self._usage if self._usage is not None else self._groq_usage,
        }
        for key, value in top.items():
            completion.setdefault(key, value)
        if "usage_breakdown" in self._groq:
            completion["usage_breakdown"] = self._groq.pop("usage_breakdown")
        if self._groq:
            completion["x_groq"] = self._groq
        return completion


def _choice_json(index: int, choice: _Choice) -> dict[str, Any]:
    message: dict[str, Any] = {"role": choice.role or "assistant"}
    texts = {key: "".join(pieces) for key, pieces in choice.text.items()}
    content = texts.pop("content", "")
    if content or (choice.saw_content and not choice.tool_calls):
        message["content"] = content
    else:
        message["content"] = None
    message.update((key, text) for key, text in texts.items() if text)
    if choice.tool_calls:
        message["tool_calls"] = [
            {
                "id": call["id"],
                "type": call["type"] or "function",
                "function": {"name": call["name"], "arguments": "".join(call["arguments"])},
            }
            for _, call in sorted(choice.tool_calls.items())
        ]
    message.update(choice.other)
    return {
        "index": index,
        "message": message,
        "logprobs": choice.logprobs,
        "finish_reason": choice.finish_reason,
    }


def _add_logprobs(choice: _Choice, logprobs: Any) -> None:
    if not isinstance(logprobs, dict):
        return
    if choice.logprobs is None:
        choice.logprobs = {}
    for key, value in logprobs.items():
        if isinstance(value, list):
            choice.logprobs.setdefault(key, []).extend(value)


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        message = error.get("message") or error.get("type") or json.dumps(error)
        return f"the provider sent an error mid-stream: {message}"
    return f"the provider sent an error mid-stream: {error}"


@dataclass(frozen=True)
class StreamTiming:
    """How a streamed answer arrived (milliseconds from sending the request).

    ``ttfb_ms``: the response's first byte (its headers); ``ttft_ms``: the first token of any
    kind (text, reasoning or a tool call); ``total_ms``: the end of the stream;
    ``output_tokens_per_s``: completion tokens over the time from first token to end.
    """

    ttfb_ms: float | None
    ttft_ms: float | None
    total_ms: float
    chunks: int
    output_tokens_per_s: float | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StreamResult:
    """A read stream: the completion, or the failure and the text that came before it."""

    completion: dict[str, Any] | None
    timing: StreamTiming
    failure: StreamFailure | None = None
    delivered: bool = False  # a token arrived before the failure: never retried
    partial_text: str = ""


def read_stream(
    body: Iterable[bytes],
    started: float,
    ttfb: float | None = None,
    on_text: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
    deadline: float | None = None,
) -> StreamResult:
    """Decode and assemble an event stream as it arrives; ``started``, ``ttfb`` and
    ``deadline`` are ``clock()`` readings. I/O errors of ``body`` must be StreamFailures."""
    decoder, assembler = EventDecoder(), ChunkAssembler()
    first_token: float | None = None
    done = False
    failure: StreamFailure | None = None
    try:
        for piece in body:
            for event in decoder.feed(piece):
                if event.data == DONE:
                    done = True
                    break
                chunk = _chunk_of(event)
                if chunk is None:
                    continue
                text = assembler.add(chunk)
                if first_token is None and assembler.produced:
                    first_token = clock()
                if text and on_text is not None:
                    on_text(text)
            if done:
                break
            if deadline is not None and clock() > deadline:
                raise StreamFailure(
                    "connection", "the stream went on past the request's timeout", "--timeout"
                )
        if not done:
            unfinished = decoder.close()
            if not assembler.complete():
                raise StreamFailure("connection", _ended_early(assembler, unfinished))
    except StreamFailure as exc:
        failure = exc
    end = clock()
    completion = assembler.result() if failure is None else None
    timing = StreamTiming(
        _ms(ttfb, started),
        _ms(first_token, started),
        _ms(end, started) or 0.0,
        assembler.chunks,
        _tokens_per_second(completion, first_token, end),
    )
    if failure is not None:
        return StreamResult(None, timing, failure, assembler.produced, assembler.partial_text())
    return StreamResult(completion, timing)


def _chunk_of(event: Event) -> Any | None:
    if event.event == "error":
        try:
            payload = json.loads(event.data)
        except ValueError:
            payload = event.data
        error = payload.get("error", payload) if isinstance(payload, dict) else payload
        raise StreamFailure("provider", _error_text(error))
    if event.event not in (None, "message"):
        return None  # an event type this client does not know: ignored
    try:
        return json.loads(event.data)
    except (ValueError, RecursionError):
        raise StreamFailure(
            "malformed", f"an event of the stream is not JSON: {event.data[:200]!r}"
        ) from None


def _ended_early(assembler: ChunkAssembler, unfinished: bool) -> str:
    if not assembler.chunks:
        return "the stream ended before its first chunk (no [DONE], no answer)"
    tail = " in the middle of an event" if unfinished else ""
    return (
        f"the stream ended{tail} after {plural(assembler.chunks, 'chunk')}, before the answer was "
        "complete (no finish_reason, no [DONE])"
    )


def _ms(at: float | None, started: float) -> float | None:
    return None if at is None else round((at - started) * 1000.0, 3)


def _tokens_per_second(
    completion: dict[str, Any] | None, first_token: float | None, end: float
) -> float | None:
    usage = (completion or {}).get("usage")
    tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
    if not isinstance(tokens, int) or first_token is None or end <= first_token:
        return None
    return round(tokens / (end - first_token), 1)
