"""The project a spec belongs to, paths that must stay inside it, and its runner.yaml.

A project is the nearest folder above a spec that holds ``.git``, ``pyproject.toml`` or
``runner.yaml``; without one, the spec's own folder. Schema ``$ref``s, template includes, data
files and base specs are resolved inside it and may not leave it. (The working folder is not
taken as the project: a spec from elsewhere, run from your home folder, could then reach every
file in it.)

``runner.yaml`` (written by ``runner init``) marks the project and holds its settings: the
endpoints its specs define and the key each sends there (``endpoints:``, a declaration that
sends nothing until the user approves it with ``runner trust``), and warnings to silence.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from runner.errors import Problem, SpecError
from runner.spec.document import Document
from runner.spec.hints import close_matches, did_you_mean
from runner.spec.load import load_yaml

CONFIG_FILE = "runner.yaml"
PROJECT_MARKERS = (".git", "pyproject.toml", CONFIG_FILE)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def find_project_root(start: Path) -> Path:
    """The project folder containing ``start`` (a file or folder)."""
    # Keyed by the absolute path (a string operation that includes the working folder), so a
    # spec's second lookup costs nothing, and the walk up is done once per folder.
    return _root_for(os.path.abspath(start))


def forget_projects() -> None:
    """Look for project markers again (one process may validate before and after a
    runner.yaml is created)."""
    _root_for.cache_clear()
    _project_root_of.cache_clear()


@lru_cache(maxsize=4096)
def _root_for(absolute: str) -> Path:
    start = Path(absolute).resolve()
    return _project_root_of(start if start.is_dir() else start.parent)


@lru_cache(maxsize=256)
def _project_root_of(folder: Path) -> Path:
    for candidate in (folder, *folder.parents):
        if has_marker(candidate):
            return candidate
    return folder


def has_marker(folder: Path) -> bool:
    """Whether ``folder`` is a project folder because it holds one of PROJECT_MARKERS."""
    return any((folder / marker).exists() for marker in PROJECT_MARKERS)


def outside_hint(root: Path, what: str, example: str | None = None) -> str:
    """What to do when ``what`` (schema files, data files, ...) leaves the project ``root``:
    when no marker made ``root`` the project, say which markers do and how to add one."""
    if has_marker(root):
        return f"keep {what} inside the project" + (f", e.g. {example}" if example else "")
    return (
        f"no .git, pyproject.toml or runner.yaml was found above the spec, so the project is "
        f"the spec's own folder {root}; mark your project's top folder with a runner.yaml "
        f"(runner init DIR writes one) to use {what} anywhere inside it"
    )


@dataclass(frozen=True)
class DeclaredEndpoint:
    """One entry of ``endpoints:`` (in runner.yaml or the user's config.yaml): the key in the
    environment variable ``api_key_env`` may go to the server at ``base_url``."""

    base_url: str
    api_key_env: str


@dataclass(frozen=True)
class ProjectConfig:
    """What a project's runner.yaml says."""

    # the endpoints its specs send keys to: nothing is sent until the user approves them
    endpoints: tuple[DeclaredEndpoint, ...] = ()
    # codes of warnings not to show for this project's specs (docs/problems.md lists codes)
    silence: frozenset[str] = frozenset()
    # the old allow-list, read only to say what replaced it
    allow_key_env: tuple[str, ...] = ()

    @property
    def declaration_sha256(self) -> str:
        """A digest of ``endpoints``: an approval holds only while it is unchanged."""
        return declaration_digest(self.endpoints)


def declaration_digest(endpoints: tuple[DeclaredEndpoint, ...]) -> str:
    pairs = sorted({(e.base_url, e.api_key_env) for e in endpoints})
    return hashlib.sha256(json.dumps(pairs).encode()).hexdigest()


SETTINGS = ("version", "endpoints", "silence", "allow_key_env")
_CODE = re.compile(r"[a-z]+(?:-[a-z]+)*")
_URL = re.compile(r"https?://[^/\s?#@\\]+(/\S*)?", re.IGNORECASE)
ENDPOINT_EXAMPLE = "- {base_url: https://llm.example.com/v1, api_key_env: MY_PROXY_KEY}"


def project_config(root: Path) -> ProjectConfig:
    """The settings in ``root/runner.yaml`` (none when it does not exist); SpecError for a
    runner.yaml that is not right, at its line."""
    file = root / CONFIG_FILE
    try:
        stamp = file.stat().st_mtime_ns
    except OSError:
        return ProjectConfig()
    return _read_config(file, stamp)


def read_settings(
    doc: Document,
    name: str,
    settings: tuple[str, ...],
    listed: str,
    version_message: str,
    code: str | None,
) -> tuple[dict[str, Any], list[Problem]]:
    """A settings file's mapping (runner.yaml, the user's config.yaml) and the problems of its
    keys: each unknown setting (with the closest one, else ``listed``: what it may hold) and a
    ``version`` other than 1. SpecError when the file is not a mapping at all."""
    data = doc.data if doc.data is not None else {}
    if not isinstance(data, dict):
        raise SpecError([doc.problem((), f"{name} must be a mapping of settings")])
    problems: list[Problem] = []
    for key in data:
        if key not in settings:
            problems.append(
                doc.problem(
                    (key,),
                    f"unknown setting '{key}' in {name}",
                    did_you_mean(str(key), settings) or listed,
                    key=True,
                    code=code,
                )
            )
    if data.get("version", 1) != 1:
        problems.append(doc.problem(("version",), version_message))
    return data, problems


@lru_cache(maxsize=64)
def _read_config(file: Path, stamp: int) -> ProjectConfig:
    doc = load_yaml(file, display_path(file))
    data, problems = read_settings(
        doc,
        "runner.yaml",
        SETTINGS,
        f"runner.yaml may hold: {', '.join(SETTINGS[:3])}",
        "runner.yaml 'version' must be 1",
        code="project-config",
    )
    endpoints, wrong = read_endpoints(doc, data.get("endpoints"))
    problems += wrong
    names = data.get("allow_key_env") or []
    if not isinstance(names, list):
        names = [names]
    codes = data.get("silence") or []
    if not isinstance(codes, list):
        codes = [codes]
    for i, code in enumerate(codes):
        if not isinstance(code, str) or not _CODE.fullmatch(code):
            problems.append(
                doc.problem(
                    ("silence", i),
                    "silence lists the codes of warnings not to show (e.g. unused-variable)",
                    code="project-config",
                )
            )
    if problems:
        raise SpecError(problems)
    return ProjectConfig(
        endpoints,
        frozenset(c for c in codes if isinstance(c, str)),
        tuple(str(n) for n in names),
    )


def read_endpoints(
    doc: Document, value: object, code: str | None = "project-config"
) -> tuple[tuple[DeclaredEndpoint, ...], list[Problem]]:
    """An ``endpoints:`` list (of runner.yaml or the user's config.yaml) and its problems."""
    if value is None:
        return (), []
    if not isinstance(value, list):
        return (), [
            doc.problem(
                ("endpoints",),
                "endpoints must be a list of servers, each with base_url and api_key_env",
                f"e.g. endpoints:\n  {ENDPOINT_EXAMPLE}",
                code=code,
            )
        ]
    found: list[DeclaredEndpoint] = []
    problems: list[Problem] = []
    for i, entry in enumerate(value):
        url = entry.get("base_url") if isinstance(entry, dict) else None
        key = entry.get("api_key_env") if isinstance(entry, dict) else None
        extra = sorted(set(entry) - {"base_url", "api_key_env"}) if isinstance(entry, dict) else []
        if not isinstance(url, str) or not _URL.fullmatch(url):
            where: tuple[str | int, ...] = ("endpoints", i, "base_url") if url else ("endpoints", i)
            problems.append(
                doc.problem(
                    where,
                    "each endpoint needs a base_url: an http:// or https:// address",
                    f"e.g. {ENDPOINT_EXAMPLE}",
                    code=code,
                )
            )
        elif not isinstance(key, str) or not _ENV_NAME.fullmatch(key):
            where = ("endpoints", i, "api_key_env") if key else ("endpoints", i)
            problems.append(
                doc.problem(
                    where,
                    "each endpoint needs an api_key_env: the NAME of the environment variable "
                    "that holds its key",
                    f"e.g. {ENDPOINT_EXAMPLE}",
                    code=code,
                )
            )
        elif extra:
            problems.append(
                doc.problem(
                    ("endpoints", i, extra[0]),
                    f"unknown setting '{extra[0]}' in an endpoint",
                    "an endpoint has base_url and api_key_env",
                    key=True,
                    code=code,
                )
            )
        else:
            found.append(DeclaredEndpoint(url, key))
    return tuple(found), problems


def written_path(reference: str) -> str:
    """A relative path as a spec gives it, with ``/`` for every ``\\``: Windows users write
    ``data\\tickets.csv``, and the spec must work on every system (elsewhere a backslash could
    be part of a file name, but no spec names such a file)."""
    return reference.replace("\\", "/")


def resolve_inside(root: Path, base: Path, relative: str) -> Path | None:
    """``relative`` resolved against folder ``base``, or None if it points outside ``root``."""
    target = (base / written_path(relative)).resolve()
    if target == root or root in target.parents:
        return target
    return None


def missing_file_hint(reference: str, target: Path) -> str:
    """What to say about ``reference`` (resolved to ``target``) not being found: where it was
    looked for, and the file of the closest name in that folder when there is one (a typo),
    else how to fix it (a spec copied without the files it uses is the common case)."""
    looked = f"looked for {display_path(target)}"
    try:
        names = [p.name for p in target.parent.iterdir() if p.is_file()]
    except OSError:
        names = []
    close = close_matches(target.name, names)
    if close:
        folder, slash, _ = written_path(reference).rpartition("/")
        return (
            f"{looked}; did you mean " + " or ".join(f"'{folder}{slash}{n}'" for n in close) + "?"
        )
    return (
        f"{looked}, as the path is relative to the folder of the spec file: copy the file "
        "there, or correct the path"
    )


def missing_outside(base: Path, reference: str) -> Path | None:
    """For a ``reference`` that leads out of the project: the file it names, when that file
    does not exist either. Then the fix is to supply the file, not to widen the project, so
    callers report it as missing rather than as outside."""
    target = (base / written_path(reference)).resolve()
    return None if target.exists() else target


def display_path(path: Path) -> str:
    """A path as a person would type it: relative to the working folder when inside it, with
    ``/`` on every system (records hold it too, so a run made on Windows diffs cleanly
    against one made elsewhere)."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_posix()
