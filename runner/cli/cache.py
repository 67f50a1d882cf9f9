"""``runner cache clear``: the project's response cache."""

from __future__ import annotations

from pathlib import Path

import click

from runner.cli.options import existing_paths, reports_errors
from runner.errors import plural


@click.group(short_help="The project's response cache (runner cache clear).")
def cache() -> None:
    """The response cache of a project (.runner/cache.sqlite, or $RUNNER_CACHE_DIR)."""


@cache.command("clear", short_help="Delete every cached answer of a project.")
@click.argument("path", default=".", type=existing_paths)
@reports_errors
def cache_clear(path: Path) -> None:
    """Delete every cached answer of the project holding PATH (default: this folder)."""
    from runner.runs.cache import ResponseCache, cache_path_for

    location = cache_path_for(path)
    if not location.is_file():
        click.echo(f"no cache at {location}", err=True)
        return
    responses = ResponseCache(location)
    try:
        click.echo(
            f"deleted {plural(responses.clear(), 'cached answer')} from {location}", err=True
        )
    finally:
        responses.close()
