"""Where requests go and with which key.

A provider is resolved once per run from, in order of precedence: the command line, the
environment (``RUNNER_PROVIDER``, ``RUNNER_BASE_URL``), the spec's ``provider:`` key, and the
default, Groq. Keys are read only from environment variables and kept in a ``Secret`` whose
repr never shows them; a key goes only to a server the user chose (``runner/providers/trust.py``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.errors import ProviderError, UntrustedEndpoint
from runner.providers.trust import Chosen, check_route, chosen_allows, origin
from runner.spec.objects import Provider

DEFAULT_PROVIDER = "groq"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
OFFLINE = "offline"


@dataclass(frozen=True)
class BuiltinProvider:
    base_url: str
    api_key_env: str | None


BUILTIN_PROVIDERS = {
    "groq": BuiltinProvider("https://api.groq.com/openai/v1", "GROQ_API_KEY"),
    "openai": BuiltinProvider("https://api.openai.com/v1", "OPENAI_API_KEY"),
}
# Each built-in key goes to its provider's server (and, unless the user says so, nowhere else).
BUILTIN_ROUTES = frozenset(
    (p.api_key_env, origin(p.base_url)) for p in BUILTIN_PROVIDERS.values() if p.api_key_env
)


class Secret:
    """An API key that does not print itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


@dataclass(frozen=True)
class Endpoint:
    """A resolved provider: a name, a base URL (None for offline) and maybe a key."""

    name: str
    base_url: str | None
    api_key_env: str | None = None
    api_key: Secret | None = field(default=None, repr=False, compare=False)

    @property
    def offline(self) -> bool:
        return self.name == OFFLINE

    @property
    def completions_url(self) -> str:
        return f"{(self.base_url or '').rstrip('/')}/chat/completions"

    def describe(self) -> dict[str, str | None]:
        """What a record or manifest says about the endpoint: never the key itself."""
        return {"name": self.name, "base_url": self.base_url, "api_key_env": self.api_key_env}


@dataclass(frozen=True)
class ProviderOverride:
    """Provider settings from the command line or environment, laid over each spec's own."""

    name: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    # False when nothing will be sent (replay, dry run): no key is read, none is needed.
    require_key: bool = True
    # Set when these settings come from a run folder's manifest (a resume, a batch, a score),
    # not from the person running the command: the folder (or "" when unknown). A run folder
    # cannot choose a server; the servers its run was started with are remembered outside it.
    run_dir: str | None = None


def resolve_endpoint(
    spec_provider: Provider | None,
    override: ProviderOverride,
    environ: Mapping[str, str] | None = None,
    project: Path | None = None,
    what: str = "the spec",
) -> Endpoint:
    """The endpoint one spec's requests go to, with its key read from the environment.

    The key goes only to a server the user chose (see ``runner/providers/trust.py``);
    ``project`` is the folder of the spec (whose approved runner.yaml may declare servers),
    ``what`` names the spec in the message that stops the run when the key may not go."""
    env = os.environ if environ is None else environ
    name = override.name or (spec_provider.name if spec_provider else None) or DEFAULT_PROVIDER
    if override.base_url and not override.name:
        name = "custom"
    if name == OFFLINE:
        return Endpoint(OFFLINE, None)
    builtin = BUILTIN_PROVIDERS.get(name)
    spec_url = spec_provider.base_url if spec_provider and spec_provider.name == name else None
    spec_key = spec_provider.api_key_env if spec_provider and spec_provider.name == name else None
    base_url = override.base_url or spec_url or (builtin.base_url if builtin else None)
    if base_url is None:
        raise ProviderError(
            f"provider '{name}' has no base URL; give --base-url or use one of "
            f"{', '.join([*BUILTIN_PROVIDERS, OFFLINE])}"
        )
    key_env = override.api_key_env or spec_key or (builtin.api_key_env if builtin else None)
    if not override.require_key or key_env is None:
        return Endpoint(name, base_url, key_env)
    _check_name(key_env)
    run_dir = Path(override.run_dir) if override.run_dir else None
    chosen = chosen_by(override)
    check_route(key_env, base_url, chosen, project, BUILTIN_ROUTES, what, run_dir)
    return Endpoint(name, base_url, key_env, _read_key(name, key_env, env))


def chosen_by(override: ProviderOverride) -> Chosen:
    """The key variable and server the command line (or environment) chose: none, when the
    settings come from a run folder."""
    if override.run_dir is not None:
        return Chosen()
    named = BUILTIN_PROVIDERS.get(override.name or "")
    key_env = override.api_key_env or (named.api_key_env if named and override.base_url else None)
    return Chosen(key_env, override.base_url)


def chosen_routes(
    endpoints: Iterable[Endpoint], override: ProviderOverride
) -> list[tuple[str, str]]:
    """The (key variable, base URL) pairs of ``endpoints`` that the command line chose and
    no other rule allows: a run remembers them for its resume (runner/providers/trust.py)."""
    chosen = chosen_by(override)
    return [
        (e.api_key_env, e.base_url)
        for e in endpoints
        if e.api_key is not None
        and e.api_key_env is not None
        and e.base_url is not None
        and (e.api_key_env, origin(e.base_url)) not in BUILTIN_ROUTES
        and chosen_allows(e.api_key_env, e.base_url, chosen, BUILTIN_ROUTES)
    ]


def endpoint_from_run(
    provider: Mapping[str, Any], run_dir: Path, projects: Sequence[Path]
) -> Endpoint:
    """The endpoint a run folder's batch state names, with its key read again from the
    environment, when the key may go there: a server the user chose for that run, or one
    the user's config or an approved project of the run's specs allows."""
    name, base_url, key_env = (provider.get(k) for k in ("name", "base_url", "api_key_env"))
    if not isinstance(name, str) or not isinstance(base_url, str | None):
        raise ProviderError(f"the batch state of {run_dir} names no provider: it is damaged")
    if base_url is None or not isinstance(key_env, str):  # offline, or a server without a key
        return Endpoint(name, base_url)
    _check_name(key_env)
    refused: UntrustedEndpoint | None = None
    candidates: list[Path | None] = [*dict.fromkeys(projects)] or [None]
    for project in candidates:
        try:
            check_route(key_env, base_url, Chosen(), project, BUILTIN_ROUTES, "a batch", run_dir)
            break
        except UntrustedEndpoint as exc:
            refused = refused or exc
    else:
        assert refused is not None
        raise refused
    return Endpoint(name, base_url, key_env, _read_key(name, key_env, os.environ))


def _check_name(key_env: str) -> None:
    if not _ENV_NAME.fullmatch(key_env):
        # Never repeat the value: it may be the key itself, pasted in the wrong place.
        raise ProviderError(
            "--api-key-env (and api_key_env) take the NAME of an environment variable, such "
            "as GROQ_API_KEY, not the key itself; the value given is not a variable name"
        )


def _read_key(name: str, key_env: str | None, env: Mapping[str, str]) -> Secret | None:
    if key_env is None:
        return None
    _check_name(key_env)
    value = env.get(key_env, "").strip()
    if not value:
        raise ProviderError(
            f"the environment variable {key_env} is not set: provider '{name}' "
            f"needs an API key (export {key_env}=..., or run with "
            "--provider offline to try the specs without a key)"
        )
    _check_header_safe(key_env, value)
    return Secret(value)


def _check_header_safe(key_env: str, value: str) -> None:
    """A key goes in the Authorization header: a line break or a character outside Latin-1
    there is a mistake (a file pasted whole, two keys, a smart quote). Say where, never what."""
    for position, char in enumerate(value, 1):
        if char < " " or char == "\x7f":
            kind = "a line break" if char in "\r\n" else "a control character"
        elif ord(char) > 0xFF:
            kind = "a character that cannot go in an HTTP header (outside Latin-1)"
        else:
            continue
        raise ProviderError(
            f"the environment variable {key_env} holds {kind} at character {position} of "
            f"{len(value)}, so it cannot be sent as an API key; set it to the key alone "
            f"(export {key_env}=...)"
        )
