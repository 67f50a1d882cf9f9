"""Commands that read finished runs: ``runner export`` (cassette, CSV, JSON Lines) and
``runner report`` (HTML or Markdown)."""

from __future__ import annotations

from pathlib import Path

import click

from runner.cli import reports_errors

run_dirs = click.Path(exists=True, file_okay=False, path_type=Path)


@click.command()
@click.argument("run_dir", type=run_dirs)
@click.option(
    "--output",
    "-o",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The file to write.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["cassette", "csv", "jsonl"]),
    default="cassette",
    show_default=True,
    help="cassette: answers for runner run --replay; csv / jsonl: one row per record.",
)
@reports_errors
def export(run_dir: Path, out: Path, fmt: str) -> None:
    """Save RUN_DIR as a cassette for runner run --replay (no secrets), or as a table."""
    if fmt == "cassette":
        from runner.cassette import export_run

        click.echo(export_run(run_dir, out).describe(), err=True)
    else:
        from runner.table import export_table

        click.echo(export_table(run_dir, out, fmt).describe(), err=True)  # type: ignore[arg-type]


def register(group: click.Group) -> None:
    """Add this module's commands to the ``runner`` command group."""
    group.add_command(export)
