"""The identical requests every client sends, and the spec files that make runner send them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MODEL = "openai/gpt-oss-120b"
SYSTEM = "You are a helpful assistant."
WORDS = ("apple", "river", "lantern", "meadow", "copper", "violin", "harbor", "cedar")

# A 10-field object schema that satisfies strict mode (all required, no extra properties).
PROFILE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer"},
        "email": {"type": "string"},
        "city": {"type": "string"},
        "country": {"type": "string"},
        "score": {"type": "number"},
        "active": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "level": {"type": "string", "enum": ["low", "medium", "high"]},
        "notes": {"type": ["string", "null"]},
    },
    "required": [
        "name",
        "age",
        "email",
        "city",
        "country",
        "score",
        "active",
        "tags",
        "level",
        "notes",
    ],
    "additionalProperties": False,
}

RESPONSE_FORMAT: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {"name": "profile", "strict": True, "schema": PROFILE_SCHEMA},
}


def topic(index: int) -> str:
    """The word that makes request ``index`` differ from its neighbours."""
    return f"{WORDS[index % len(WORDS)]} {index}"


def user_text(index: int) -> str:
    return f"Say hello to {topic(index)}."


def request_body(index: int, structured: bool = False) -> dict[str, Any]:
    """The chat-completion body of request ``index``, as the SDK clients send it."""
    body: dict[str, Any] = {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": user_text(index)},
        ],
        "temperature": 0.2,
        "max_tokens": 64,
    }
    if structured:
        body["response_format"] = RESPONSE_FORMAT
    return body


def spec_text(index: int, structured: bool = False) -> str:
    """A spec file whose rendered request equals ``request_body(index, structured)``."""
    lines = [
        "version: 1",
        f"name: req-{index:05d}",
        f"model: {MODEL}",
        "temperature: 0.2",
        "max_tokens: 64",
        "vars:",
        f"  topic: {topic(index)}",
        "messages:",
        "  - role: system",
        f"    content: {SYSTEM}",
        "  - role: user",
        "    content: Say hello to {{ topic }}.",
    ]
    if structured:
        lines.append(f"response_format: {json.dumps(RESPONSE_FORMAT)}")
    return "\n".join(lines) + "\n"


def write_specs(folder: Path, count: int, structured: bool = False) -> Path:
    """Write ``count`` spec files into ``folder`` (created) and return it."""
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        (folder / f"req-{index:05d}.yaml").write_text(spec_text(index, structured))
    return folder


def write_cases_spec(folder: Path, count: int, structured: bool = False) -> Path:
    """One spec with ``count`` cases in a CSV file: the same requests as ``write_specs``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data").mkdir(exist_ok=True)
    rows = "".join(f"req-{index:05d},{topic(index)}\n" for index in range(count))
    (folder / "data" / "cases.csv").write_text("id,topic\n" + rows)
    lines = spec_text(0, structured).splitlines()
    lines = [line for line in lines if not line.startswith(("vars:", "  topic:"))]
    lines[1] = "name: req"
    lines.append("cases: data/cases.csv")
    (folder / "req.yaml").write_text("\n".join(lines) + "\n")
    return folder / "req.yaml"
