"""Render a spec's message templates into the exact JSON request body that will be sent.

Templates run in Jinja's immutable sandbox with undefined variables as errors: a spec cannot
reach Python internals, change the values it is given, or read files outside the project's
``templates/`` folder (the only place ``{% include %}`` looks).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import jinja2
from jinja2.exceptions import SecurityError

from runner.errors import Problem, RenderError
from runner.spec.cases import (
    NO_CASE,
    NO_COMBINATION,
    Case,
    Combination,
    Selection,
    expand,
    record_id,
)
from runner.spec.images import ImageUse, recorded_body, render_image_part, wire_part
from runner.spec.objects import ImagePart, Message, Spec, TextTemplate
from runner.spec.project import find_project_root
from runner.spec.sandbox import TemplateSandbox, work_budget

TEMPLATES_FOLDER = "templates"


@dataclass(frozen=True)
class Request:
    """One request ready to send: the spec it came from, its variables and its JSON body.

    ``images`` are the local images whose data URLs the body holds, by position.
    """

    spec: Spec
    vars: Mapping[str, Any]
    body: dict[str, Any]
    case: Case = NO_CASE
    combination: Combination = NO_COMBINATION
    images: tuple[ImageUse, ...] = ()

    @property
    def record_id(self) -> str:
        return record_id(self.spec.name, self.case, self.combination)

    @property
    def recorded_body(self) -> dict[str, Any]:
        """The body as records keep it: each local image a reference, not base64 text."""
        return recorded_body(self.body, self.images)


# A template may build at most this many characters or items with '*', and create ranges of at
# most this many numbers in all, so a spec cannot exhaust memory or loop for hours.
class ProjectTemplateLoader(jinja2.FileSystemLoader):
    """Loads includes from the project's templates/ folder, refusing symlinks that leave it.

    Without a templates/ folder every include is simply not found (rather than Jinja's
    "no loader" TypeError).
    """

    def __init__(self, project_root: Path):
        self.root = (project_root / TEMPLATES_FOLDER).resolve()
        super().__init__(str(project_root / TEMPLATES_FOLDER))

    def get_source(self, environment: jinja2.Environment, template: str) -> Any:
        # "parts\\sign-off.j2", as a Windows user writes it, is "parts/sign-off.j2" everywhere
        source = super().get_source(environment, template.replace("\\", "/"))
        target = Path(source[1]).resolve()
        if self.root not in target.parents:
            raise SecurityError(
                f"the include '{template}' is a link to a file outside {TEMPLATES_FOLDER}/"
            )
        return source


@lru_cache(maxsize=64)
def template_environment(project_root: Path) -> jinja2.Environment:
    """The sandboxed Jinja environment for one project (cached: building it is not free)."""
    return TemplateSandbox(
        loader=ProjectTemplateLoader(project_root),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
    )


def render_request(
    spec: Spec,
    variables: Mapping[str, Any] | None = None,
    case: Case = NO_CASE,
    combination: Combination = NO_COMBINATION,
    images: Literal["embed", "placeholder"] = "embed",
) -> Request:
    """The request for one case and matrix combination of ``spec``.

    Variables: the spec's ``vars``, then the case's, then ``variables`` (from the command
    line) win. Request fields: the spec's, then the combination's. Local images are read and
    embedded as data URLs; with ``images="placeholder"`` their paths are rendered but their
    URLs left empty and no image file is read (to check or measure a request cheaply).
    """
    merged = {**spec.vars, **case.vars, **(variables or {})}
    env = template_environment(find_project_root(spec.path))
    used: list[ImageUse] = []
    messages = [
        _render_message(env, message, merged, (i, used, images))
        for i, message in enumerate(spec.messages)
    ]
    body: dict[str, Any] = {
        "model": spec.model,
        "messages": messages,
        **spec.params,
        **combination.fields,
    }
    return Request(spec, merged, body, case, combination, tuple(used))


def render_requests(
    spec: Spec, variables: Mapping[str, Any] | None = None, selection: Selection | None = None
) -> Iterator[Request]:
    """Every selected case x combination of ``spec``, rendered one at a time."""
    for case, combination in expand(spec.cases, spec.matrix, selection):
        yield render_request(spec, variables, case, combination)


def requests_json(requests: Sequence[tuple[str, dict[str, Any]]]) -> str:
    """``(record id, body)`` pairs as JSON. One request: its body. Several: a list of
    {"id": record id, "body": body}."""
    if len(requests) == 1 and not requests[0][0].count("/"):
        return json.dumps(requests[0][1], indent=2, ensure_ascii=False)
    listed = [{"id": record_id, "body": body} for record_id, body in requests]
    return json.dumps(listed, indent=2, ensure_ascii=False)


# Where a message's local images go: its index, the request's list of images, and the mode.
_ImageSink = tuple[int, list[ImageUse], str]


def _render_message(
    env: jinja2.Environment, message: Message, variables: Mapping[str, Any], sink: _ImageSink
) -> dict[str, Any]:
    rendered: dict[str, Any] = {"role": message.role}
    content = message.content
    if isinstance(content, TextTemplate):
        rendered["content"] = render_text(env, content, variables)
    elif isinstance(content, tuple):
        rendered["content"] = [
            _render_part(env, part, variables, sink, p) for p, part in enumerate(content)
        ]
    elif message.role != "assistant" or not message.fields.get("tool_calls"):
        rendered["content"] = content
    rendered.update(message.fields)
    return rendered


def _render_part(
    env: jinja2.Environment,
    part: Any,
    variables: Mapping[str, Any],
    sink: _ImageSink,
    index: int,
) -> Any:
    if isinstance(part, TextTemplate):
        return {"type": "text", "text": render_text(env, part, variables)}
    if isinstance(part, ImagePart):
        message_index, used, mode = sink
        if mode == "placeholder":
            render_text(env, part.path, variables)  # the path's template must render
            return wire_part("", part.detail)
        wire, image = render_image_part(part, render_text(env, part.path, variables))
        used.append((message_index, index, image))
        return wire
    return dict(part)


def render_text(
    env: jinja2.Environment, template: TextTemplate, variables: Mapping[str, Any]
) -> str:
    """Render one template, turning every Jinja failure into a RenderError at its position."""
    try:
        with work_budget():
            return _compile(env, template.source).render(variables)
    except jinja2.UndefinedError as exc:
        name = _undefined_name(str(exc.message))
        hint = (
            f"give it a value under 'vars:' or with --var {name}=..."
            if name
            else "check the variable names in the template"
        )
        raise RenderError(_at(template, f"template error: {exc.message}", hint)) from None
    except SecurityError as exc:
        raise RenderError(
            _at(
                template,
                f"template tried something unsafe: {exc}",
                "templates may only use the variables they are given",
            )
        ) from None
    except jinja2.TemplateNotFound as exc:
        raise RenderError(
            _at(
                template,
                f"template include not found: {exc.name}",
                f"includes are looked up in the project's {TEMPLATES_FOLDER}/ folder",
            )
        ) from None
    except jinja2.TemplateError as exc:
        raise RenderError(_at(template, f"template error: {exc}")) from None
    except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as exc:
        message = f"template error: {type(exc).__name__}: {exc}"
        raise RenderError(_at(template, message)) from None
    except RecursionError:
        raise RenderError(_at(template, "template error: it calls itself too deeply")) from None
    except MemoryError:
        raise RenderError(
            _at(template, "template error: it needs more memory than there is")
        ) from None


def _at(template: TextTemplate, message: str, hint: str | None = None) -> Problem:
    return Problem(template.path, message, template.line, template.column, hint)


def _undefined_name(message: str) -> str | None:
    parts = message.split("'")
    return parts[1] if len(parts) >= 3 and message.endswith("is undefined") else None


@lru_cache(maxsize=4096)
def _compile(env: jinja2.Environment, source: str) -> jinja2.Template:
    return env.from_string(source)
