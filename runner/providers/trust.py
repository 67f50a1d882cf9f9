"""Which server a key may go to: only one the person running runner chose.

A key (the value of an environment variable) may go to a server (its origin: scheme, host and
port) when:

- they are a built-in pair: ``GROQ_API_KEY`` to Groq's API, ``OPENAI_API_KEY`` to OpenAI's;
- the user named both on the command line or in the environment (``--base-url`` with
  ``--api-key-env``, or ``--provider groq --base-url URL``), or named the key variable for a
  built-in server (``--api-key-env NAME``);
- the user's own config.yaml lists them under ``endpoints:``;
- the spec's project declares them under ``endpoints:`` in its runner.yaml, and the user
  approved that declaration with ``runner trust`` (kept in the user's config folder, keyed by
  the project's absolute path and a digest of the declaration: void once it changes).

A spec, a project file or a run folder naming a server is never enough by itself.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from runner.errors import ProviderError, SpecError, UntrustedEndpoint, UsageError
from runner.providers.user_config import config_dir, user_config, user_config_path
from runner.spec.project import (
    CONFIG_FILE,
    DeclaredEndpoint,
    find_project_root,
    project_config,
)

APPROVALS_NAME = "trusted.json"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(url: str) -> str:
    """The server a URL names, as ``scheme://host[:port]`` (lower case, default port left
    out): what a key is bound to. A path on the same server is the same server.

    Parsed by urllib3, as the transport parses the URL it connects to: Python's urlsplit
    reads ``https://evil.example\\@api.groq.com/v1`` as api.groq.com, and urllib3 connects
    to evil.example, so a check with one parser and a request with the other would send a
    key where the check did not look."""
    try:
        parts = parse_url(url.strip().rstrip("/") + "/")
    except LocationParseError:
        return url
    scheme, host, port = (parts.scheme or "").lower(), (parts.host or "").lower(), parts.port
    if port is None or port == _DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


@dataclass(frozen=True)
class Chosen:
    """What the person running the command chose on its command line or in the environment:
    a key variable (``--api-key-env``, or the key of the built-in ``--provider``), and a base
    URL (``--base-url``)."""

    key_env: str | None = None
    base_url: str | None = None


def check_route(
    key_env: str,
    base_url: str,
    chosen: Chosen,
    project: Path | None,
    builtin: Collection[tuple[str, str]],
    what: str = "the spec",
    run_dir: Path | None = None,
) -> None:
    """Raise UntrustedEndpoint unless the key in ``key_env`` may go to ``base_url`` (see the
    module's docstring). ``project`` is the folder of the spec (or judge) that asks for it;
    ``builtin`` the built-in providers' (key variable, origin) pairs; ``what`` names the spec
    in the message. ``run_dir`` is the run folder whose settings name the server (a resume,
    a batch): the servers the user chose when starting that run are allowed too."""
    host = origin(base_url)
    pair = (key_env, host)
    if pair in builtin or chosen_allows(key_env, base_url, chosen, builtin):
        return
    if pair in _pairs(_user_endpoints()):
        return
    if run_dir is not None and list(pair) in _read_store()["runs"].get(_run_key(run_dir), []):
        return
    declared, approved = _project_pairs(project)
    if pair in approved:
        return
    if run_dir is not None and not declared:
        raise UntrustedEndpoint([_run_refusal(key_env, base_url, run_dir, what)])
    raise UntrustedEndpoint([_refusal(key_env, base_url, chosen, project, what, pair in declared)])


def chosen_allows(
    key_env: str, base_url: str, chosen: Chosen, builtin: Collection[tuple[str, str]]
) -> bool:
    """Whether the command line (or environment) chose to send ``key_env`` to ``base_url``:
    both named there, or the key variable named there and the server a built-in one."""
    if chosen.key_env != key_env:
        return False
    if chosen.base_url is not None:
        return origin(chosen.base_url) == origin(base_url)
    return origin(base_url) in {host for _, host in builtin}


def _user_endpoints() -> tuple[DeclaredEndpoint, ...]:
    try:
        return user_config().endpoints
    except SpecError as exc:
        raise UsageError(f"your runner config is not right: {exc}") from None


def _pairs(endpoints: Iterable[DeclaredEndpoint]) -> set[tuple[str, str]]:
    return {(e.api_key_env, origin(e.base_url)) for e in endpoints}


def _project_pairs(project: Path | None) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """The key and server pairs the project declares, and those of them the user approved."""
    if project is None:
        return set(), set()
    try:
        config = project_config(project)
    except SpecError:
        return set(), set()  # a broken runner.yaml is reported by validation
    declared = _pairs(config.endpoints)
    approval = _approvals().get(str(project))
    if approval and approval.get("sha256") == config.declaration_sha256:
        return declared, declared
    return declared, set()


def _refusal(
    key_env: str, base_url: str, chosen: Chosen, project: Path | None, what: str, declared: bool
) -> str:
    """What would have been sent where, why it was not, and the one command that sends it."""
    host = origin(base_url)
    sent = f"{what} would send the key in ${key_env} to {host}"
    if declared and project is not None:
        changed = _approvals().get(str(project)) is not None
        why = (
            "its endpoints changed since you approved them"
            if changed
            else "you have not approved its endpoints"
        )
        return (
            f"{sent}, which {project / CONFIG_FILE} declares, and {why}; nothing was sent. "
            f"If you trust this project, approve them with: runner trust {project}"
        )
    mine = " (the key variable is the one you gave with --api-key-env)" if chosen.key_env else ""
    where = (
        f"declare it under endpoints: in {project / CONFIG_FILE} and approve that with "
        f"runner trust {project}"
        if project is not None
        else "declare it in a project's runner.yaml and approve that with runner trust"
    )
    return (
        f"{sent}, a server that only the spec names{mine}; nothing was sent. A spec cannot "
        f"choose where a key goes. To send it there, choose it yourself: give "
        f"--base-url {base_url} --api-key-env {key_env}; or list it under endpoints: in "
        f"{user_config_path()}; or {where}"
    )


def _run_refusal(key_env: str, base_url: str, run_dir: Path, what: str) -> str:
    return (
        f"{what} would send the key in ${key_env} to {origin(base_url)}, as the run folder "
        f"{run_dir} says, and that run was not started with that server here (a run folder "
        "cannot choose where a key goes); nothing was sent. If that server is right, choose "
        f"it yourself: list it under endpoints: in {user_config_path()} (base_url: "
        f"{base_url}, api_key_env: {key_env}); a resume (runner run --resume RUN) may instead "
        "be given the run's own --base-url and --api-key-env"
    )


# ---- run folders: the servers a run was started with, for its resume and its batches

MAX_RUNS = 1000  # run folders remembered; the oldest are forgotten first


def _run_key(run_dir: Path) -> str:
    return str(run_dir.resolve())


def remember_run(run_dir: Path, routes: Iterable[tuple[str, str]]) -> None:
    """Remember, outside the run folder, that the user chose to send each (key variable,
    base URL) of ``routes`` for the run in ``run_dir``: its resume, its batch commands and
    runner score may send them again, though a run folder alone never chooses a server."""
    chosen = sorted({(key_env, origin(url)) for key_env, url in routes})
    if not chosen:
        return
    with _locked():
        data = _read_store()
        runs = data["runs"]
        runs.pop(_run_key(run_dir), None)
        runs[_run_key(run_dir)] = [list(pair) for pair in chosen]
        for stale in list(runs)[: max(len(runs) - MAX_RUNS, 0)]:
            del runs[stale]
        _write_store(data)


# ---- approvals: runner trust


@dataclass(frozen=True)
class Approval:
    """A project's declared endpoints, approved (or revoked) by the user."""

    project: Path
    endpoints: tuple[DeclaredEndpoint, ...]
    store: Path

    def describe(self) -> list[str]:
        return [f"${e.api_key_env} -> {origin(e.base_url)}" for e in self.endpoints]


def approvals_path() -> Path:
    return config_dir() / APPROVALS_NAME


def _read_store() -> dict[str, Any]:
    """trusted.json: the ``projects`` approved with runner trust, and the ``runs`` started
    with a server the user chose (remember_run)."""
    path = approvals_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {"version": 1, "projects": {}, "runs": {}}
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = json.loads(text)
        data.setdefault("runs", {})
        if not isinstance(data["projects"], dict) or not isinstance(data["runs"], dict):
            raise TypeError
    except (ValueError, KeyError, TypeError, AttributeError):
        raise UsageError(
            f"{path} is not a file runner wrote (it keeps the projects you approved with runner "
            "trust): delete it, and approve your projects again"
        ) from None
    return data


def _approvals() -> dict[str, dict[str, Any]]:
    projects = _read_store()["projects"]
    return {k: v for k, v in projects.items() if isinstance(v, dict)}


LOCK_STALE = 30.0  # seconds after which a lock file is taken to be left by a killed process


@contextmanager
def _locked() -> Iterator[None]:
    """One writer of trusted.json at a time, so two runs starting at once both keep their
    record: a lock file made with O_EXCL (the same on every system), waited for a few seconds,
    and taken over once it is stale."""
    folder = config_dir()
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / ".trusted.lock"
    deadline = time.monotonic() + 5.0
    while True:
        try:
            os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            break
        except FileExistsError:
            try:
                stale = time.time() - lock.stat().st_mtime > LOCK_STALE
            except OSError:
                continue  # just released
            if stale or time.monotonic() > deadline:
                lock.unlink(missing_ok=True)
            else:
                time.sleep(0.01)
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def _write_store(data: dict[str, Any]) -> None:
    path = approvals_path()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".trusted-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({**data, "version": 1}, out, indent=2)
            out.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _project_of(directory: Path) -> tuple[Path, tuple[DeclaredEndpoint, ...], str]:
    if not directory.is_dir():
        raise UsageError(f"{directory} is not a folder")
    root = find_project_root(directory)
    if not (root / CONFIG_FILE).is_file():
        raise UsageError(
            f"{root} has no {CONFIG_FILE}, so it declares no endpoints: nothing to trust "
            "(the offline and built-in providers need no approval)"
        )
    config = project_config(root)  # SpecError, at its line, for a runner.yaml that is not right
    return root, config.endpoints, config.declaration_sha256


def approve_project(directory: Path) -> Approval:
    """Approve the endpoints declared by the runner.yaml of the project holding
    ``directory``: its specs may then send those keys to those servers."""
    root, endpoints, digest = _project_of(directory)
    if not endpoints:
        raise UsageError(
            f"{root / CONFIG_FILE} declares no endpoints: nothing to trust (the offline and "
            "built-in providers need no approval)"
        )
    with _locked():
        data = _read_store()
        data["projects"][str(root)] = {
            "sha256": digest,
            "endpoints": [
                {"base_url": e.base_url, "api_key_env": e.api_key_env} for e in endpoints
            ],
            "approved": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        _write_store(data)
    return Approval(root, endpoints, approvals_path())


def revoke_project(directory: Path) -> Approval:
    """Withdraw the approval of the project holding ``directory`` (or of ``directory`` itself,
    when it no longer exists); ProviderError when it had none."""
    absolute = Path(os.path.abspath(directory))
    root = find_project_root(absolute) if absolute.is_dir() else absolute
    with _locked():
        data = _read_store()
        projects = data["projects"]
        entry = projects.pop(str(root), None) or projects.pop(str(absolute), None)
        if not isinstance(entry, dict):
            raise ProviderError(f"{root} was not trusted: nothing to revoke")
        _write_store(data)
    endpoints = tuple(
        DeclaredEndpoint(str(e.get("base_url")), str(e.get("api_key_env")))
        for e in entry.get("endpoints", [])
        if isinstance(e, dict)
    )
    return Approval(root, endpoints, approvals_path())


def approved_projects() -> list[Approval]:
    """Every project the user approved, with the endpoints approved then."""
    return [
        Approval(
            Path(root),
            tuple(
                DeclaredEndpoint(str(e.get("base_url")), str(e.get("api_key_env")))
                for e in entry.get("endpoints", [])
                if isinstance(e, dict)
            ),
            approvals_path(),
        )
        for root, entry in sorted(_approvals().items())
    ]


def refuse_allow_list(names: Iterable[str]) -> None:
    """``--allow-key-env`` (and the API's ``allow_key_env``) let a spec send a key anywhere it
    chose; they are refused, with what replaced them."""
    names = list(names)
    if names:
        raise UsageError(
            f"--allow-key-env ({', '.join(names)}) is no longer taken: it let a spec choose the "
            "server a key goes to. Choose the server yourself with --base-url URL "
            "--api-key-env NAME, list it under endpoints: in your "
            f"{user_config_path()}, or declare it under endpoints: in the project's "
            "runner.yaml and approve that once with: runner trust DIR"
        )
