"""Commands that read finished runs: ``runner export`` (cassette, CSV, JSON Lines) and
``runner report`` (HTML or Markdown), and ``runner diff`` of two runs."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from runner.cli.options import (
    EXIT_FAILED,
    EXIT_OK,
    echo_shown,
    reports_errors,
    resolves_runs,
    run_folder,
)
from runner.errors import UsageError


@click.command(short_help="Save a run as a cassette for --replay, or as CSV/JSONL.")
@click.argument("run_dir", type=run_folder)
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
    help="cassette: answers for runner run --replay; csv / jsonl: one row per record "
    "(default: from the file's extension, .csv for CSV, .jsonl for a cassette).",
)
@click.option(
    "--excel",
    is_flag=True,
    help="CSV: start the file with the UTF-8 byte order mark, so Excel reads accents right.",
)
@click.option(
    "--raw-text",
    is_flag=True,
    help="CSV: write text as it is, even text a spreadsheet runs as a formula "
    "(by default a cell starting with = + - @, tab or CR gets a leading ').",
)
@reports_errors
@resolves_runs("run_dir")
def export(run_dir: Path, out: Path, fmt: str | None, excel: bool, raw_text: bool) -> None:
    """Save RUN_DIR as a cassette for runner run --replay (no secrets), or as a table."""
    fmt = fmt or _format_of(out)
    if fmt == "cassette":
        for flag, given in (("--excel", excel), ("--raw-text", raw_text)):
            if given:
                raise UsageError(f"{flag} is for CSV: give it with --format csv")
        from runner.runs.cassette import export_run

        click.echo(export_run(run_dir, out).describe(), err=True)
    else:
        from runner.results.table import export_table

        written = export_table(run_dir, out, fmt, excel, raw_text)  # type: ignore[arg-type]
        click.echo(written.describe(), err=True)


# What --format a file's extension asks for; other extensions are refused, with a guess.
EXTENSION_FORMATS = {".csv": "csv", ".jsonl": "cassette"}
EXTENSION_GUESSES = {".tsv": "csv", ".xls": "csv", ".xlsx": "csv", ".json": "jsonl"}


def _format_of(out: Path) -> str:
    """The export format a file name asks for, or a usage error that names the likely one."""
    suffix = out.suffix.lower()
    if suffix in EXTENSION_FORMATS:
        return EXTENSION_FORMATS[suffix]
    guess = EXTENSION_GUESSES.get(suffix, "csv")
    raise UsageError(
        f"cannot tell the format from the name {out.name}: did you mean --format {guess}? "
        "(--format cassette, csv or jsonl; a .csv name means csv, a .jsonl name a cassette)"
    )


def register(group: click.Group) -> None:
    """Add this module's commands to the ``runner`` command group."""
    group.add_command(export)
    group.add_command(report)
    group.add_command(show)


@click.command(short_help="Print the answers of a run (default: the latest run).")
@click.argument("run_dir", required=False, default="latest", type=run_folder, metavar="[RUN]")
@click.option(
    "--id",
    "ids",
    multiple=True,
    metavar="ID",
    help="Only this record: its id, the start of its id up to a '/', or its case id (repeatable).",
)
@click.option(
    "--failed",
    is_flag=True,
    help="Only records that failed: the request, the output check or an expect: check.",
)
@click.option("--limit", type=click.IntRange(min=1), help="At most N records.")
@reports_errors
@resolves_runs("run_dir")
def show(run_dir: Path, ids: tuple[str, ...], failed: bool, limit: int | None) -> None:
    """Print each record of RUN (a run folder, a run id, latest or latest~N; default latest):
    its text, its structured output as JSON, its tool calls, and each failed check with what
    was expected and what came. Records print from the first, as they are read.

    Exit code 0, or 1 when --id names no record of the run.
    """
    from runner.results.show import RecordFilter, ShownRun

    shown = ShownRun(run_dir, RecordFilter(ids, failed, limit))
    echo_shown(shown.lines())
    click.echo(shown.describe(), err=True)
    if ids and not shown.shown:
        click.echo(f"error: no record of {run_dir} matches --id {', '.join(ids)}", err=True)
        sys.exit(EXIT_FAILED)


@click.command(short_help="Write an HTML or Markdown report of a run, or compare two.")
@click.argument("run_dirs", nargs=-1, required=True, type=run_folder, metavar="RUN_DIR [RUN_DIR]")
@click.option(
    "--output",
    "-o",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The file to write (default: report.html in the run directory; Markdown: stdout).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "md"]),
    default="html",
    show_default=True,
    help="html: one self-contained page; md: the overview tables, for CI summaries.",
)
@click.option(
    "--max-rows",
    type=click.IntRange(min=0),
    default=2000,
    show_default=True,
    help="Records shown as rows (the overview always counts every record).",
)
@reports_errors
@resolves_runs("run_dirs")
def report(run_dirs: tuple[Path, ...], out: Path | None, fmt: str, max_rows: int) -> None:
    """Write a report of RUN_DIR, or compare two runs (A before, B after).

    The HTML page needs no network: open it from disk or as a CI artifact.
    """
    from runner.results.report import write_report

    if out is None and fmt == "html":
        out = run_dirs[-1] / "report.html"
    written = write_report(run_dirs, out, fmt, max_rows)  # type: ignore[arg-type]
    if written.text is not None:
        click.echo(written.text, nl=False)
    else:
        click.echo(written.describe(), err=True)


@click.command(short_help="Compare two runs record by record: what changed.")
@click.argument("run_a", type=run_folder)
@click.argument("run_b", type=run_folder)
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@click.option(
    "--verbose",
    "-v",
    is_flag=True,
    help="Also token and latency changes, and records whose only change is their tokens.",
)
@reports_errors
@resolves_runs("run_a", "run_b")
def diff(run_a: Path, run_b: Path, as_json: bool, verbose: bool) -> None:
    """Compare two runs (folders, run ids, latest or latest~N) record by record: each changed
    record with its old -> new answer or check.

    Exit code 0 when both give the same answers, 1 when any output, status or expectation
    result differs or records were added or are missing, 2 for usage errors.
    """
    from runner.results.diff import StreamedDiff

    result = StreamedDiff(run_a, run_b)
    if as_json:
        for chunk in result.json():
            click.echo(chunk, nl=False)
        click.echo()
    else:
        for line in result.text(verbose):
            click.echo(line)
    sys.exit(EXIT_OK if result.counts.identical else EXIT_FAILED)
