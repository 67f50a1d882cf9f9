"""Request fields a schema cannot judge alone: structured output, tools and tool_choice, token
limits, JSON mode, and the provider a spec names."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from runner.check.codes import silence_problems
from runner.check.context import SpecFile
from runner.check.refs import locate, resolve_schema
from runner.check.strict import strict_mode_problems
from runner.errors import Fix, Problem, SpecError
from runner.providers.endpoints import BUILTIN_PROVIDERS, OFFLINE
from runner.spec.document import PathKey
from runner.spec.hints import closest, is_slip
from runner.spec.load import load_yaml
from runner.spec.objects import OutputSchema, Provider, Spec, Tool
from runner.spec.project import CONFIG_FILE, ENDPOINT_EXAMPLE, display_path, project_config


def build_output_schema(
    file: SpecFile, params: dict[str, Any], problems: list[Problem]
) -> OutputSchema | None:
    """What the answer must look like; ``params['response_format']`` gets its refs inlined."""
    response_format = params.get("response_format")
    if not response_format or response_format.get("type") == "text":
        return None
    if response_format["type"] == "json_object":
        return OutputSchema("json_object")
    spec = response_format["json_schema"]
    path: PathKey = ("response_format", "json_schema", "schema")
    raw = spec.get("schema", {})
    schema = resolve_schema(file, path, raw, problems)
    if schema is not None:
        if spec.get("strict"):
            hint = "fix the schema, or set strict: false"
            problems.extend(
                _strict_problems(file, path, raw, schema, "response schema breaks", hint)
            )
        params["response_format"] = {
            **response_format,
            "json_schema": {**spec, "schema": schema},
        }
    return OutputSchema("json_schema", schema, spec.get("name"))


def build_tools(
    file: SpecFile, params: dict[str, Any], problems: list[Problem]
) -> tuple[Tool, ...]:
    """The spec's function tools; ``params['tools']`` gets their parameter refs inlined."""
    raw_tools = params.get("tools") or []
    tools: list[Tool] = []
    resolved: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_tools):
        function = raw.get("function")
        if raw.get("type") != "function" or not isinstance(function, dict):
            resolved.append(raw)
            continue
        name = function["name"]
        if name in seen:
            problems.append(
                file.problem(
                    ("tools", i, "function", "name"),
                    f"two tools are named '{name}'",
                    "give each tool its own name",
                )
            )
        seen.add(name)
        path: PathKey = ("tools", i, "function", "parameters")
        raw_parameters = function.get("parameters", {"type": "object"})
        parameters = resolve_schema(file, path, raw_parameters, problems)
        parameters = parameters if parameters is not None else {}
        if function.get("strict"):
            problems.extend(
                _strict_problems(file, path, raw_parameters, parameters, "tool parameters break")
            )
        tools.append(Tool(name, parameters, function.get("description")))
        if "parameters" in function:
            function = {**function, "parameters": parameters}
        resolved.append({**raw, "function": function})
    if raw_tools:
        params["tools"] = resolved
    return tuple(tools)


def _strict_problems(
    file: SpecFile,
    path: PathKey,
    value: Any,
    schema: dict[str, Any],
    what: str,
    hint: str | None = None,
) -> Iterator[Problem]:
    """``what`` is the subject and verb of the message: 'tool parameters break'. Each problem
    is at the schema node that breaks the rule, in the spec or in a $ref'd file."""
    for where, message in strict_mode_problems(schema):
        inside = [part for part in where.split("/") if part]
        yield locate(file, path, value, inside, f"{what} strict mode: {message}", hint)


def build_provider(value: Any) -> Provider | None:
    """The spec's ``provider:`` (a name, or a mapping with a base_url)."""
    if value is None:
        return None
    if isinstance(value, str):
        return Provider(value)
    return Provider(value.get("name") or "custom", value["base_url"], value.get("api_key_env"))


def check_tool_choice(file: SpecFile, spec: Spec) -> Iterator[Problem]:
    """tool_choice needs tools, and a tool_choice naming a function needs that function."""
    choice = file.data.get("tool_choice")
    if choice is None:
        return
    if not file.data.get("tools") and choice != "none":
        yield file.problem(
            ("tool_choice",),
            "tool_choice is set but the spec defines no tools",
            "add 'tools:' or remove 'tool_choice'",
            key=True,
        )
    if isinstance(choice, dict):
        name = choice.get("function", {}).get("name")
        names = [t.name for t in spec.tools]
        if name not in names:
            guess = closest(str(name), names)
            yield file.problem(
                ("tool_choice", "function", "name"),
                f"tool_choice names the tool '{name}', which is not defined",
                (f"did you mean '{guess}'? write: name: {guess}" if guess else None)
                or (f"defined tools: {', '.join(names)}" if names else None),
                code="tool-choice",
                fix=Fix("set", ("tool_choice", "function", "name"), name, value=guess)
                if guess and isinstance(name, str) and is_slip(name, guess)
                else None,
            )


def check_token_limits(file: SpecFile, spec: Spec) -> Iterator[Problem]:
    """max_tokens is the old name of max_completion_tokens; both at once is a mistake."""
    if "max_tokens" in file.data and "max_completion_tokens" in file.data:
        yield file.problem(
            ("max_tokens",),
            "both max_tokens and max_completion_tokens are set",
            "keep only max_completion_tokens (max_tokens is its old name)",
            key=True,
        )


def check_json_mode_mentions_json(file: SpecFile, spec: Spec) -> Iterator[Problem]:
    """Providers reject JSON mode unless the messages ask for JSON: OpenAI's 400 "'messages'
    must contain the word 'json' in some form, to use 'response_format' of type
    'json_object'" (its API reference: "the model will not generate JSON without a system or
    user message instructing it to do so"); checked 2026-12-03."""
    if spec.output is None or spec.output.kind != "json_object":
        return
    if not any("json" in source.lower() for _, source in file.template_sources()):
        yield file.problem(
            ("response_format", "type"),
            "JSON mode needs the word 'JSON' in the messages, or the provider rejects the request",
            "ask for JSON in the system or user message",
        )


def check_provider_label(file: SpecFile, spec: Spec) -> Iterator[Problem]:
    """A built-in provider's name on another base_url would send that provider's key
    (GROQ_API_KEY, ...) to the URL a spec chose; a spec from elsewhere could steal it."""
    provider = file.data.get("provider")
    if isinstance(provider, dict) and provider.get("name") in (*BUILTIN_PROVIDERS, OFFLINE):
        yield file.problem(
            ("provider", "name"),
            f"'{provider['name']}' is a built-in provider; a provider with its own "
            "base_url needs another name",
            "e.g. name: my-proxy, with api_key_env: naming the key it needs",
        )


def check_provider_url(file: SpecFile, spec: Spec) -> Iterator[Problem]:
    """A base_url whose address part holds ``@`` or a backslash is read as different servers
    by different programs (``https://evil.example\\@api.groq.com/`` is Groq to Python's
    urlsplit and evil.example to urllib3): refused, so no reader of a spec is misled about
    where its requests go."""
    provider = file.data.get("provider")
    url = provider.get("base_url") if isinstance(provider, dict) else None
    if not isinstance(url, str):
        return
    address = url.split("://", 1)[-1]
    authority = re.split(r"[/?#]", address, maxsplit=1)[0]
    if "@" in authority or "\\" in authority:
        yield file.problem(
            ("provider", "base_url"),
            "base_url has user info or a backslash before its path, which programs read as "
            "different servers",
            "give the server's address alone, e.g. https://llm.example.com/v1; a key goes in "
            "the environment variable that api_key_env names",
            code="provider-url",
        )


def check_project_config(file: SpecFile, spec: Spec) -> Iterator[Problem]:
    """The project's runner.yaml, checked whenever one of its specs is: a misspelt setting
    must not go unnoticed until a spec happens to need it."""
    try:
        config = project_config(file.root)
    except SpecError as exc:
        yield from exc.problems
        return
    yield from silence_problems(file.root, config)
    if config.allow_key_env:
        doc = load_yaml(file.root / CONFIG_FILE, display_path(file.root / CONFIG_FILE))
        yield replace(
            doc.problem(
                ("allow_key_env",),
                "allow_key_env no longer lets specs send keys: a project cannot choose where "
                "your keys go",
                "declare each server and its key under endpoints: (e.g. endpoints: "
                f"{ENDPOINT_EXAMPLE}), then approve the declaration once with: runner trust "
                f"{file.root}",
                key=True,
                code="project-config",
            ),
            severity="warning",
        )
