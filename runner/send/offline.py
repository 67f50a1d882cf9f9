"""The built-in offline provider: answers chat-completion requests locally, deterministically.

``complete(body)`` takes the exact JSON body that would be POSTed to ``/chat/completions`` and
returns a response of the real ``chat.completion`` wire shape: text for plain chats, a JSON
object for ``json_object``, JSON that satisfies the schema for ``json_schema``, and a tool call
whose arguments satisfy the tool's ``parameters`` when tools are offered. The same body always
gives the same bytes back. Standard library only; schema instances are cached per schema text.
"""

from __future__ import annotations

import hashlib
from typing import Any

from runner.send.instances import as_dict, as_list, canonical, compact, instance_text, int_or
from runner.send.offline_verdict import verdict_text

CREATED = 1767225600  # fixed (2026-01-01T00:00:00Z) so the same request gives the same bytes
PREVIEW_CHARS = 200
CHARS_PER_TOKEN = 4
MAX_CHOICES = 128
SEEDS = 1024  # distinct seeds, so distinct answers, per schema


# --------------------------------------------------------------------------------------------
# the response


def complete(body: dict) -> dict:
    """Answer a chat-completions request body locally and deterministically."""
    if not isinstance(body, dict):
        body = {}
    digest = _digest(body)
    seed = _seed_of(digest)
    messages = [m for m in as_list(body.get("messages")) if isinstance(m, dict)]
    call = _tool_call(body, messages, digest, seed)
    if call is not None:
        message: dict[str, Any] = {"role": "assistant", "content": None, "tool_calls": [call]}
        finish, produced = "tool_calls", call["function"]["name"] + call["function"]["arguments"]
    else:
        content, finish = _limit(_content(body, messages, seed), body)
        message, produced = {"role": "assistant", "content": content}, content
    choices = [
        {"index": i, "message": dict(message), "logprobs": None, "finish_reason": finish}
        for i in range(_choice_count(body))
    ]
    return {
        "id": "offline-" + digest[:24],
        "object": "chat.completion",
        "created": CREATED,
        "model": body.get("model") if isinstance(body.get("model"), str) else "offline",
        "choices": choices,
        "usage": _usage(messages, len(produced) * len(choices)),
        "system_fingerprint": "offline",
    }


def _digest(body: dict) -> str:
    """sha256 of the body; a streamed request gets the answer its non-streamed twin gets (same
    id, same tool calls)."""
    unstreamed = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
    return hashlib.sha256(canonical(unstreamed).encode("utf-8")).hexdigest()


def request_seed(body: dict) -> int:
    """What the answer's choices (enum members, numbers, strings, tool arguments) follow: a
    hash of the request body. The same body, the same answer; a changed prompt, a new one
    (but for one chance in SEEDS: seeds are kept few so that schema instances stay cached)."""
    return _seed_of(_digest(body if isinstance(body, dict) else {}))


def _seed_of(digest: str) -> int:
    return int(digest[:12], 16) % SEEDS + 1


def _choice_count(body: dict) -> int:
    n = body.get("n")
    return n if isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= MAX_CHOICES else 1


def _text_of(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    parts = [p.get("text") for p in as_list(content) if isinstance(p, dict)]
    return " ".join(p for p in parts if isinstance(p, str))


def _last_text(messages: list[dict], role: str) -> str:
    for message in reversed(messages):
        if message.get("role") == role:
            return _text_of(message.get("content"))
    return ""


def _content(body: dict, messages: list[dict], seed: int) -> str:
    if messages and messages[-1].get("role") == "tool":
        text = "[offline] tool result: " + _text_of(messages[-1].get("content"))[:PREVIEW_CHARS]
    else:
        text = ("[offline] " + _last_text(messages, "user")[:PREVIEW_CHARS]).rstrip()
    response_format = as_dict(body.get("response_format"))
    kind = response_format.get("type")
    if kind == "json_schema":
        schema = as_dict(response_format.get("json_schema")).get("schema")
        if isinstance(schema, (dict, bool)):
            return verdict_text(schema, instance_text(schema, seed), seed)
        return compact({"answer": text})
    if kind == "json_object":
        return compact({"answer": text})
    return text


def _limit(text: str, body: dict) -> tuple[str, str]:
    """Cut ``text`` at the first stop sequence and at the token limit; the finish reason."""
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else [s for s in as_list(stop) if isinstance(s, str)]
    cuts = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    if cuts:
        text = text[: min(cuts)]
    limit = body.get("max_completion_tokens")
    if limit is None:
        limit = body.get("max_tokens")
    limit = int_or(limit, 0)
    if limit >= 1 and _tokens(len(text)) > limit:
        return text[: CHARS_PER_TOKEN * limit - 1], "length"
    return text, "stop"


def _tokens(chars: int) -> int:
    return chars // CHARS_PER_TOKEN + 1


def _usage(messages: list[dict], completion_chars: int) -> dict[str, Any]:
    prompt = _tokens(sum(len(_text_of(m.get("content"))) for m in messages))
    completion = _tokens(completion_chars)
    return {
        "queue_time": 0.0,
        "prompt_tokens": prompt,
        "prompt_time": 0.0,
        "completion_tokens": completion,
        "completion_time": 0.0,
        "total_tokens": prompt + completion,
        "total_time": 0.0,
    }


def _tool_call(body: dict, messages: list[dict], digest: str, seed: int) -> dict[str, Any] | None:
    """The one tool call to make, or None when the answer should be text."""
    choice = body.get("tool_choice")
    if choice == "none" or (messages and messages[-1].get("role") == "tool"):
        return None
    functions = [
        t["function"]
        for t in as_list(body.get("tools"))
        if isinstance(t, dict)
        and isinstance(t.get("function"), dict)
        and isinstance(t["function"].get("name"), str)
    ]
    if not functions:
        return None
    wanted = choice.get("function") if isinstance(choice, dict) else None
    name = wanted.get("name") if isinstance(wanted, dict) else None
    function = next((f for f in functions if f["name"] == name), functions[0])
    parameters = function.get("parameters")
    arguments = instance_text(parameters, seed) if isinstance(parameters, dict) else "{}"
    call_hash = hashlib.sha256((digest + function["name"]).encode("utf-8")).hexdigest()
    return {
        "id": "call_" + call_hash[:24],
        "type": "function",
        "function": {"name": function["name"], "arguments": arguments},
    }
