"""Finding a run directory from what a person types: a path, a run id, ``latest`` or
``latest~N`` (the run N before the latest), in the runs folder (``runs``, or ``$RUNNER_OUT``).

A name that is not a run is a ``UsageError`` that lists the closest run names and the most
recent runs, so a typo in a long id like ``20261203T190413Z-efb088`` is fixed at a glance.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from runner.errors import UsageError, plural
from runner.runs.store import MANIFEST

LATEST = "latest"
RUNS_FOLDER_ENV = "RUNNER_OUT"
DEFAULT_RUNS_FOLDER = Path("runs")
_LATEST = re.compile(r"latest(?:~(\d+))?")
SHOWN = 3  # closest and most recent runs named in an error


@dataclass(frozen=True)
class RunEntry:
    """One run directory of a runs folder, and when it started (for ordering)."""

    path: Path
    started_at: str


def runs_folder(environ: dict[str, str] | None = None) -> Path:
    """Where runs are saved by default: ``$RUNNER_OUT`` or ``runs``."""
    env = os.environ if environ is None else environ
    value = env.get(RUNS_FOLDER_ENV, "").strip()
    return Path(value) if value else DEFAULT_RUNS_FOLDER


def list_runs(folder: Path) -> list[RunEntry]:
    """The run directories in ``folder`` (those with a manifest), oldest first.

    Runs are ordered by the start time their manifest gives, then by name (a run id starts
    with its UTC start time, so the name orders runs whose manifest cannot be read)."""
    try:
        children = list(os.scandir(folder))
    except OSError:
        return []
    runs = []
    for child in children:
        if not child.is_dir() or child.name.startswith("."):
            continue
        path = Path(child.path)
        if not (path / MANIFEST).is_file():
            continue
        runs.append(RunEntry(path, _started_at(path)))
    runs.sort(key=lambda run: (run.started_at, run.path.name))
    return runs


def _started_at(path: Path) -> str:
    """The manifest's start time; the run id's time stamp when the manifest is unreadable."""
    try:
        with open(path / MANIFEST, encoding="utf-8") as handle:
            manifest = json.load(handle)
        value = manifest.get("started_at") if isinstance(manifest, dict) else None
    except (OSError, ValueError):
        value = None
    return value if isinstance(value, str) else _stamp_of(path.name)


def _stamp_of(name: str) -> str:
    """``20261203T190413Z-efb088`` as ``2026-12-03T19:04:13``, comparable with manifest times."""
    match = re.match(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})", name)
    if match is None:
        return ""
    y, mo, d, h, mi, s = match.groups()
    return f"{y}-{mo}-{d}T{h}:{mi}:{s}"


def resolve_run(text: str | Path, folder: Path | None = None) -> Path:
    """The run directory ``text`` names.

    ``text`` is a run directory's path, a run id in the runs folder, ``latest`` (the run that
    started last), ``latest~1`` (the one before it) and so on, or ``FOLDER/latest``. ``folder``
    is the runs folder (default: ``$RUNNER_OUT`` or ``runs``).
    """
    raw = str(text)
    path = Path(raw)
    base = folder if folder is not None else runs_folder()
    name = path.name
    if _LATEST.fullmatch(name) and not (path / MANIFEST).is_file():
        parent = path.parent if raw.rstrip("/") != name else base
        return _latest(parent, name)
    if (path / MANIFEST).is_file():
        return path
    if path.is_dir():
        inside = list_runs(path)
        if inside:
            raise UsageError(
                f"{raw} is a folder of runs, not a run: give one of them; "
                + _suggestions(path, "", raw)
            )
        raise UsageError(
            f"{raw} is not a run directory (it has no {MANIFEST}); " + _suggestions(base, name, raw)
        )
    if len(path.parts) == 1 and (base / raw / MANIFEST).is_file():
        return base / raw
    parent = path.parent if len(path.parts) > 1 else base
    raise UsageError(f"no run folder {raw}; " + _suggestions(parent, name, raw))


def _latest(folder: Path, name: str) -> Path:
    match = _LATEST.fullmatch(name)
    assert match is not None
    back = int(match.group(1) or 0)
    runs = list_runs(folder)
    if not runs:
        raise UsageError(
            f"{name}: {folder} holds no runs yet (start one with runner run SPEC..., or give "
            "the runs folder with --out or RUNNER_OUT)"
        )
    if back >= len(runs):
        raise UsageError(
            f"{name}: {folder} holds {plural(len(runs), 'run')}, "
            f"so the oldest is latest~{len(runs) - 1}"
        )
    return runs[-1 - back].path


def _suggestions(folder: Path, name: str, typed: str) -> str:
    """The closest run names and the most recent runs in ``folder``, as a sentence."""
    runs = list_runs(folder)
    if not runs:
        return f"{folder} holds no runs (run directories are made by runner run)"
    names = [run.path.name for run in runs]
    closest = difflib.get_close_matches(name, names, n=SHOWN, cutoff=0.5)
    closest += [n for n in names if name and n.startswith(name) and n not in closest][:SHOWN]
    recent = [
        f"{run.path} ({LATEST if i == 0 else f'latest~{i}'})"
        for i, run in enumerate(reversed(runs[-SHOWN:]))
    ]
    parts = []
    if closest:
        parts.append("closest: " + ", ".join(str(folder / n) for n in closest[:SHOWN]))
    parts.append("most recent: " + ", ".join(recent))
    return "; ".join(parts)
