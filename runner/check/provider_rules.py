"""The providers' own request rules: requests that pass the spec schema but that Groq and
OpenAI refuse with a 400, found before anything is sent. Each rule cites where it is written.

(Checked against the providers' documentation on 2026-12-03.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from runner.check.context import SpecFile
from runner.check.forms import flow
from runner.errors import Fix, Problem
from runner.spec.objects import Spec

# Content parts other than text are for user messages only. OpenAI's API reference
# (openai-openapi, ChatCompletionRequestSystemMessage): "For system messages, only type `text`
# is supported"; developer and tool messages take text parts, assistant messages text and
# refusal parts. Groq's vision guide sends images in user messages only.
TEXT_ONLY_ROLES = ("system", "developer", "assistant", "tool")


def check_tool_parameters(file: SpecFile, spec: Spec) -> Iterator[Problem]:
    """A function's ``parameters`` must be a JSON Schema whose root is an object: OpenAI's API
    reference (FunctionParameters: "described as a JSON Schema object") and its 400
    ``invalid_function_parameters`` ("Invalid schema for function 'f': schema must be a JSON
    Schema of 'type: "object"'"); Groq's tool-use guide defines parameters the same way."""
    for i, raw in enumerate(file.data.get("tools") or []):
        function = raw.get("function") if isinstance(raw, dict) else None
        if not isinstance(function, dict) or "parameters" not in function:
            continue
        tool = next((t for t in spec.tools if t.name == function.get("name")), None)
        parameters = tool.parameters if tool is not None else function["parameters"]
        if not isinstance(parameters, dict) or parameters.get("type") == "object":
            continue
        path = ("tools", i, "function", "parameters")
        kind = parameters.get("type")
        if kind is None and "properties" not in parameters:
            continue  # an empty or unreadable schema: reported (or allowed) elsewhere
        if kind is None and "$ref" not in function["parameters"]:
            yield file.problem(
                path,
                f"the parameters of tool '{function.get('name')}' have 'properties' but no "
                "'type: object'; the provider refuses a parameters schema whose root is not an "
                "object",
                "add the line: type: object",
                code="tool-parameters-not-object",
                fix=Fix("add", (*path, "type"), None, value="object"),
            )
            continue
        wrapped = {"type": "object", "properties": {"value": parameters}, "required": ["value"]}
        yield file.problem(
            path,
            f"the parameters of tool '{function.get('name')}' are a schema of "
            f"type {flow(kind)}; the provider takes only a schema of 'type: object', whose "
            "properties are the arguments",
            f"name the argument, e.g.: parameters: {flow(wrapped)}",
            code="tool-parameters-not-object",
        )


def check_content_parts(file: SpecFile, spec: Spec) -> Iterator[Problem]:
    """Images only in user messages (see TEXT_ONLY_ROLES)."""
    for i, message in enumerate(file.data["messages"]):
        content = message.get("content")
        role = message.get("role")
        if role not in TEXT_ONLY_ROLES or not isinstance(content, list):
            continue
        for j, part in enumerate(content):
            if isinstance(part, dict) and part.get("type") == "image_url":
                yield file.problem(
                    ("messages", i, "content", j),
                    f"an image can only be sent in a user message; the parts of a {role} "
                    "message may only be text (the provider refuses the request)",
                    "move this part into a message with role: user, e.g. "
                    f"- role: user, content: [{flow(part)}]",
                    code="image-not-in-user-message",
                )


def check_tool_messages(file: SpecFile, spec: Spec) -> Iterator[Problem]:
    """A tool message answers a call of the assistant message before it, and every call of an
    assistant message is answered. OpenAI's 400s: "Messages with role 'tool' must be a
    response to a preceding message with 'tool_calls'" and "An assistant message with
    'tool_calls' must be followed by tool messages responding to each 'tool_call_id'"."""
    messages = file.data["messages"]
    open_calls: dict[str, int] = {}
    for i, message in enumerate(messages):
        role = message.get("role")
        if role == "tool":
            call = message.get("tool_call_id")
            if call in open_calls:
                del open_calls[call]
                continue
            yield file.problem(
                ("messages", i),
                f"this tool message answers the call '{call}', but no assistant message "
                "before it made that call (the provider refuses the request)",
                "add before it the assistant message that made the call: - role: assistant, "
                f"tool_calls: [{{id: {flow(call)}, type: function, function: {{name: ..., "
                "arguments: '{}'}}]",
                code="tool-message-without-call",
            )
            continue
        yield from _unanswered(file, messages, open_calls)
        open_calls = {}
        if role == "assistant":
            for call in message.get("tool_calls") or []:
                if isinstance(call, dict) and isinstance(call.get("id"), str):
                    open_calls[call["id"]] = i
    yield from _unanswered(file, messages, open_calls)


def _unanswered(
    file: SpecFile, messages: list[Any], open_calls: dict[str, int]
) -> Iterator[Problem]:
    for call, index in open_calls.items():
        yield file.problem(
            ("messages", index),
            f"the assistant's tool call '{call}' has no tool message answering it (the "
            "provider refuses the request)",
            f"add after it: - {{role: tool, tool_call_id: {flow(call)}, content: ...}}",
            code="tool-call-without-answer",
        )


def check_reasoning_format(file: SpecFile, spec: Spec) -> Iterator[Problem]:
    """Groq's reasoning guide (https://console.groq.com/docs/reasoning, checked 2026-12-03):
    "If reasoning is explicitly set to raw with JSON mode or tool use enabled, we will return a
    400 error", and include_reasoning cannot be used together with reasoning_format. Both are
    Groq's parameters: checked when the spec's requests go to Groq (the default)."""
    if spec.provider is not None and spec.provider.name != "groq":
        return
    data = file.data
    chosen = data.get("reasoning_format")
    if chosen is None:
        return
    if "include_reasoning" in data:
        yield file.problem(
            ("include_reasoning",),
            "include_reasoning and reasoning_format cannot be used together (Groq refuses "
            "the request)",
            "keep one: reasoning_format: hidden does what include_reasoning: false does",
            key=True,
            code="reasoning-format",
        )
    structured = (data.get("response_format") or {}).get("type") in ("json_object", "json_schema")
    if chosen == "raw" and (structured or data.get("tools")):
        what = "JSON mode or structured output" if structured else "tools"
        yield file.problem(
            ("reasoning_format",),
            f"reasoning_format: raw cannot be used with {what} (Groq refuses the request)",
            "write: reasoning_format: parsed (the reasoning comes in message.reasoning)",
            code="reasoning-format",
        )
