"""The user's own settings: ``$XDG_CONFIG_HOME/runner/config.yaml`` (``~/.config/runner/...``
when XDG_CONFIG_HOME is not set).

It lives outside every project, so it says what the person running runner chose: the servers
their keys may go to (``endpoints:``). A project's files can never add to it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from runner.errors import SpecError
from runner.spec.load import load_yaml
from runner.spec.project import DeclaredEndpoint, read_endpoints, read_settings

CONFIG_NAME = "config.yaml"
SETTINGS = ("version", "endpoints")


def config_dir() -> Path:
    """The folder of runner's user files: $XDG_CONFIG_HOME/runner, else ~/.config/runner (an
    XDG_CONFIG_HOME that is not an absolute path is ignored, as the XDG spec says)."""
    base = os.environ.get("XDG_CONFIG_HOME", "")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".config"
    return root / "runner"


def user_config_path() -> Path:
    return config_dir() / CONFIG_NAME


@dataclass(frozen=True)
class UserConfig:
    """What the user's config.yaml says."""

    endpoints: tuple[DeclaredEndpoint, ...] = ()


def user_config() -> UserConfig:
    """The user's config.yaml (empty when there is none); SpecError at its line when it is
    not right."""
    path = user_config_path()
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return UserConfig()
    return _read(path, stamp)


@lru_cache(maxsize=4)
def _read(path: Path, stamp: int) -> UserConfig:
    doc = load_yaml(path, str(path))
    data, problems = read_settings(
        doc,
        "runner's config.yaml",
        SETTINGS,
        f"it may hold: {', '.join(SETTINGS)}",
        "config.yaml's 'version' must be 1",
        code=None,
    )
    endpoints, wrong = read_endpoints(doc, data.get("endpoints"), code=None)
    problems += wrong
    if problems:
        raise SpecError(problems)
    return UserConfig(endpoints)
