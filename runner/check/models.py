"""The spec's model against its provider's catalogue (runner/providers/catalogue.py), at the
``model:`` line and at each model of a matrix: a retired model is an error naming its
replacement, a deprecated one a warning with its shutdown date, an id the table does not know a
warning with the closest ones (providers add models faster than any table). A request the model
cannot serve is an error: images to a text-only model, strict json_schema or tools where the
model has no constrained decoding, reasoning_effort it does not take, more completion tokens
than it writes.

A provider with its own base_url serves what it serves: it is not checked.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from runner.check.context import SpecFile
from runner.errors import Problem
from runner.providers.catalogue import Catalogue, Model, catalogue_for
from runner.spec.document import PathKey
from runner.spec.hints import close_matches
from runner.spec.objects import Spec


def check_model(file: SpecFile, spec: Spec) -> Iterator[Problem]:
    """Every model the spec's requests go to, against the provider's table."""
    table = catalogue_for(file.provider if file.provider is not None else spec.provider)
    if table is None:
        return
    data = file.data
    matrix_models = (data.get("matrix") or {}).get("model")
    models: list[tuple[PathKey, Any]] = [(("model",), data.get("model"))]
    if isinstance(matrix_models, list):
        models += [(("matrix", "model", i), m) for i, m in enumerate(matrix_models)]
    for path, model_id in models:
        if not isinstance(model_id, str):
            continue
        model = table.get(model_id)
        if model is None:
            yield _unknown(file, table, path, model_id)
        elif model.status == "retired":
            yield _retired(file, table, path, model)
        else:
            if model.status == "deprecated":
                yield _deprecated(file, table, path, model)
            # the spec's own model serves no request when a matrix gives the models
            if path != ("model",) or not isinstance(matrix_models, list):
                yield from _cannot_serve(file, table, model)


def _unknown(file: SpecFile, table: Catalogue, path: PathKey, model_id: str) -> Problem:
    close = table.closest(model_id)
    retired = close_matches(model_id, [m.id for m in table.models.values() if not m.usable])
    if close:
        hint = "did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
    elif retired and (model := table.get(retired[0])) is not None and model.replacement:
        when = f" on {model.shutdown}" if model.shutdown else ""
        write = (
            "write it in place of this one"
            if path[0] == "matrix"
            else f"write: model: {model.replacement}"
        )
        hint = (
            f"did you mean '{model.id}'? {table.provider} retired that model{when} and "
            f"recommends {model.replacement}: {write}"
        )
    else:
        hint = f"runner models --provider {table.provider} lists the models runner knows"
    return _warning(
        file,
        path,
        f"{table.provider} has no model '{model_id}' in runner's catalogue (as of "
        f"{table.as_of}); if the provider has added it since, ignore this warning",
        hint,
        "unknown-model",
    )


def _warning(file: SpecFile, path: PathKey, message: str, hint: str, code: str) -> Problem:
    return replace(file.problem(path, message, hint, code=code), severity="warning")


def _retired(file: SpecFile, table: Catalogue, path: PathKey, model: Model) -> Problem:
    when = f" on {model.shutdown}" if model.shutdown else ""
    if path[0] == "matrix":
        hint = f"{table.provider} recommends {model.replacement}: write it in place of this one"
    else:
        hint = f"{table.provider} recommends {model.replacement}; write: model: {model.replacement}"
    return file.problem(
        path,
        f"{table.provider} retired the model '{model.id}'{when}: every request to it fails",
        hint,
        code="retired-model",
    )


def _deprecated(file: SpecFile, table: Catalogue, path: PathKey, model: Model) -> Problem:
    return _warning(
        file,
        path,
        f"the model '{model.id}' is deprecated: {table.provider} shuts it down on "
        f"{model.shutdown or 'a date it has announced'}",
        f"move to {model.replacement} before then" if model.replacement else "move before then",
        "deprecated-model",
    )


def _values(data: dict[str, Any], key: str) -> Iterator[tuple[PathKey, Any]]:
    """A request field's value, and each value a matrix gives it, with their paths."""
    if key in data:
        yield (key,), data[key]
    values = (data.get("matrix") or {}).get(key)
    if isinstance(values, list):
        for i, value in enumerate(values):
            yield ("matrix", key, i), value


def _cannot_serve(file: SpecFile, table: Catalogue, model: Model) -> Iterator[Problem]:
    data = file.data
    name = f"'{model.id}'"
    if not model.images:
        image = _first_image(data.get("messages") or [])
        if image is not None:
            vision = [m.id for m in table.current if m.images]
            yield file.problem(
                image,
                f"{name} takes no images, but this message sends one (the provider refuses "
                "the request)",
                f"use a model that reads images, such as {vision[0]}"
                if vision
                else "send the text alone",
                code="model-capability",
            )
    strict_models = ", ".join(m.id for m in table.current if m.strict) or "none"
    response_format = data.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        if not model.json_schema:
            yield file.problem(
                ("response_format", "type"),
                f"{name} does not take response_format json_schema",
                "write type: json_object and describe the JSON in the messages, or use a "
                f"model that does, such as {strict_models}",
                code="model-capability",
            )
        elif (response_format.get("json_schema") or {}).get("strict") and not model.strict:
            yield file.problem(
                ("response_format", "json_schema", "strict"),
                f"{name} does not take strict: true (constrained decoding); the provider "
                "refuses the request",
                "write strict: false (the model then follows the schema best-effort, and "
                f"runner still checks each answer), or use one of {strict_models}",
                code="model-capability",
            )
    tools = data.get("tools")
    if tools and not model.tools:
        yield file.problem(
            ("tools",),
            f"{name} does not take tools",
            "remove tools:, or use a model that calls tools",
            code="model-capability",
        )
    elif isinstance(tools, list) and not model.strict:
        for i, tool in enumerate(tools):
            function = tool.get("function") if isinstance(tool, dict) else None
            if isinstance(function, dict) and function.get("strict"):
                yield file.problem(
                    ("tools", i, "function", "strict"),
                    f"{name} does not take tools with strict: true",
                    f"write strict: false, or use one of {strict_models}",
                    code="model-capability",
                )
    for path, effort in _values(data, "reasoning_effort"):
        if not model.reasoning_effort:
            yield file.problem(
                path,
                f"{name} takes no reasoning_effort (it is no reasoning model)",
                "remove the line",
                code="model-capability",
            )
        elif effort not in model.reasoning_effort:
            yield file.problem(
                path,
                f"{name} takes reasoning_effort {', '.join(model.reasoning_effort)}, not "
                f"{effort!r} (the provider refuses the request)",
                f"write: reasoning_effort: {model.reasoning_effort[0]}",
                code="model-capability",
            )
    limit = model.max_completion_tokens
    for key in ("max_completion_tokens", "max_tokens"):
        for path, value in _values(data, key):
            if limit is not None and isinstance(value, int) and value > limit:
                yield file.problem(
                    path,
                    f"{name} writes at most {limit:,} completion tokens; {key} is {value:,}",
                    f"write: {key}: {limit}",
                    code="model-capability",
                )


def _first_image(messages: list[Any]) -> PathKey | None:
    for i, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            for j, part in enumerate(content):
                if isinstance(part, dict) and part.get("type") == "image_url":
                    return ("messages", i, "content", j)
    return None
