"""Typed spec objects: what a validated spec file means, independent of YAML.

Everything after validation works on these objects; raw YAML dicts stay in load/validate.
The request fields the spec passes through unchanged to the API (``temperature``, ``tools``,
``response_format``, ...) are kept in ``Spec.params`` exactly as they go on the wire, with file
``$ref``s already replaced by the schemas they point at.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.spec.cases import CaseSource
from runner.spec.expectations import Check

# Keys of a spec that belong to the runner; every other top-level key is a request field.
RUNNER_KEYS = frozenset(
    {
        "version",
        "name",
        "description",
        "provider",
        "vars",
        "extra_body",
        "extends",
        "cases",
        "matrix",
        "expect",
    }
)


@dataclass(frozen=True)
class Provider:
    """Where requests go: a built-in provider name, or an OpenAI-compatible base URL."""

    name: str
    base_url: str | None = None
    api_key_env: str | None = None


@dataclass(frozen=True)
class TextTemplate:
    """A piece of message text that is a Jinja template, with where it starts in its file."""

    source: str
    path: str
    line: int
    column: int


@dataclass(frozen=True)
class ImagePart:
    """An ``image_url`` content part naming a local file (see ``runner/images.py``).

    ``path`` is a template over the case's variables, relative to ``folder`` (the folder of
    the file holding the part); ``detail`` goes on the wire as given.
    """

    path: TextTemplate
    folder: Path
    detail: str | None = None


@dataclass(frozen=True)
class Message:
    """One chat message before rendering.

    ``content`` is a template, a list of content parts (whose ``text`` entries are templates,
    and whose local images are ``ImagePart``), or None (an assistant message that only calls
    tools). ``fields`` holds the other message fields (``name``, ``tool_call_id``,
    ``tool_calls``) as they go on the wire.
    """

    role: str
    content: TextTemplate | tuple[dict[str, Any] | TextTemplate | ImagePart, ...] | None
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Tool:
    """A function the model may call, with the JSON Schema its arguments must satisfy."""

    name: str
    parameters: Mapping[str, Any]
    description: str | None = None


@dataclass(frozen=True)
class OutputSchema:
    """The structured output a spec asks for: ``json_object`` (any object) or a JSON Schema."""

    kind: str
    schema: Mapping[str, Any] | None = None
    name: str | None = None


@dataclass(frozen=True)
class Spec:
    """One validated spec file (merged with the base specs it extends, listed in ``bases``).

    ``sha256`` covers the spec file and its bases; the data file has its own hash in
    ``cases.sha256``.
    """

    path: Path
    display: str
    sha256: str
    name: str
    model: str
    messages: tuple[Message, ...]
    params: Mapping[str, Any]
    vars: Mapping[str, Any]
    provider: Provider | None = None
    description: str | None = None
    tools: tuple[Tool, ...] = ()
    output: OutputSchema | None = None
    cases: CaseSource | None = None
    matrix: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    bases: tuple[str, ...] = ()
    expect: tuple[Check, ...] = ()  # what a correct answer is (see runner/grade/expect.py)
    # the template variables the messages, image paths and expect: checks read
    variables_used: frozenset[str] = frozenset()
    # The judges its judge: checks name, by the path as written (see runner/spec/judges.py).
    judges: Mapping[str, Spec] = field(default_factory=dict)
