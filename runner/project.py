"""The project a spec belongs to, and paths that must stay inside it.

A project is the nearest folder above a spec that holds ``.git``, ``pyproject.toml`` or
``runner.yaml``; without one, the spec's own folder. Schema ``$ref``s and template includes are
resolved inside it and may not leave it.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

PROJECT_MARKERS = (".git", "pyproject.toml", "runner.yaml")


def find_project_root(start: Path) -> Path:
    """The project folder containing ``start`` (a file or folder)."""
    # Keyed by the absolute path (a string operation that includes the working folder), so a
    # spec's second lookup costs nothing, and the walk up is done once per folder.
    return _root_for(os.path.abspath(start))


@lru_cache(maxsize=4096)
def _root_for(absolute: str) -> Path:
    start = Path(absolute).resolve()
    return _project_root_of(start if start.is_dir() else start.parent)


@lru_cache(maxsize=256)
def _project_root_of(folder: Path) -> Path:
    for candidate in (folder, *folder.parents):
        if any((candidate / marker).exists() for marker in PROJECT_MARKERS):
            return candidate
    return folder


def resolve_inside(root: Path, base: Path, relative: str) -> Path | None:
    """``relative`` resolved against folder ``base``, or None if it points outside ``root``."""
    target = (base / relative).resolve()
    if target == root or root in target.parents:
        return target
    return None


def display_path(path: Path) -> str:
    """A path as a person would type it: relative to the working folder when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
