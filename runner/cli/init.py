"""``runner init [DIR]``: the command line of ``runner/init.py``."""

from __future__ import annotations

from pathlib import Path

import click

from runner.cli.options import reports_errors


@click.command("init", short_help="Start a project: runner.yaml, specs/, schemas/, templates/.")
@click.argument("folder", default=".", type=click.Path(file_okay=False, path_type=Path))
@reports_errors
def init(folder: Path) -> None:
    """Start a project in FOLDER (default: here): runner.yaml, specs/, schemas/, templates/
    and a .gitignore. Existing files are kept, never overwritten."""
    from runner.spec.init_project import init_project

    click.echo(init_project(folder).describe(str(folder)))
