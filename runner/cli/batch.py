"""``runner batch ...``: send a run through the provider's Batch API, follow it, fetch it.

A command group rather than ``runner run --batch``: a batch is not sent and answered in one
sitting (submit returns at once, the answers come hours later), and the synchronous options
(concurrency, rpm, tpm) mean nothing to it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from runner.cli.options import (
    EXIT_FAILED,
    EXIT_OK,
    cache_mode,
    echo_json,
    out_dir_option,
    print_plan,
    reports_errors,
    resolves_runs,
    run_folder,
    run_options,
    selection_options,
    variables_options,
)
from runner.errors import UsageError

if TYPE_CHECKING:
    from runner.runs.batch import BatchResult
    from runner.spec.cases import Selection

existing_paths = click.Path(exists=True, path_type=Path)
run_dir_argument = click.argument("run_dir", type=run_folder, metavar="RUN_DIR")


@click.group(short_help="Send specs through the Batch API: cheaper, answers later.")
def batch() -> None:
    """Send specs through the provider's Batch API (cheaper, answers within a window)."""


@batch.command(short_help="Render specs and submit their requests as batches.")
@click.argument("paths", nargs=-1, type=existing_paths)
@out_dir_option
@click.option("--provider", envvar="RUNNER_PROVIDER", help="groq, openai, or a label.")
@click.option("--base-url", envvar="RUNNER_BASE_URL", help="An OpenAI-compatible API base URL.")
@click.option("--api-key-env", metavar="NAME", envvar="RUNNER_API_KEY_ENV", help="Key variable.")
@click.option(
    "--completion-window",
    default="24h",
    show_default=True,
    help="How long the provider may take: 24h (OpenAI); 24h to 7d (Groq).",
)
@click.option("--max-lines", type=click.IntRange(min=1), help="Requests per batch file.")
@click.option("--max-bytes", type=click.IntRange(min=1024), help="Bytes per batch file.")
@click.option("--retries", type=click.IntRange(0, 20), default=5, show_default=True)
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=120.0)
@click.option("--no-cache", is_flag=True, help="Neither read nor write the response cache.")
@click.option("--refresh", is_flag=True, help="Submit every request; update the cache.")
@click.option(
    "--resume",
    "resume_dir",
    type=run_folder,
    metavar="RUN",
    help="Finish an interrupted submit, or submit again what a fetch left without an answer.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="List what would be submitted and what comes from the cache; submit nothing.",
)
@click.option("--quiet", "-q", is_flag=True, help="No summary.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON on stdout.")
@selection_options
@reports_errors
@resolves_runs("resume_dir")
@variables_options
def submit(
    paths: tuple[Path, ...],
    out_dir: Path,
    resume_dir: Path | None,
    no_cache: bool,
    refresh: bool,
    dry_run: bool,
    quiet: bool,
    as_json: bool,
    selection: Selection,
    **options: Any,
) -> None:
    """Render specs and submit their requests as batches into a new run directory."""
    from runner import api

    if bool(paths) == bool(resume_dir):
        raise UsageError("give spec files or folders to submit, or --resume RUN_DIR (not both)")
    if resume_dir is not None:
        if dry_run:
            raise UsageError("--dry-run lists what a new submit would send: drop --resume")
        result = api.resume_submit(resume_dir)
    else:
        cache = cache_mode(no_cache, refresh, None, dry_run, None)
        chosen = run_options({**options, "stream": False}, cache, None, selection)
        if dry_run:
            print_plan(api.plan_specs(*paths, options=chosen), as_json)
        window, lines, size = (options[k] for k in ("completion_window", "max_lines", "max_bytes"))
        result = api.submit_specs(
            *paths,
            out=out_dir,
            options=chosen,
            completion_window=window,
            max_lines=lines,
            max_bytes=size,
        )
    _print_result(result, "submitted", quiet, as_json)


@batch.command(short_help="Ask the provider where each batch of RUN_DIR stands.")
@run_dir_argument
@click.option("--watch", is_flag=True, help="Poll until every batch has ended.")
@click.option("--interval", type=click.FloatRange(min=0.01), default=30.0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@reports_errors
@resolves_runs("run_dir")
def status(run_dir: Path, watch: bool, interval: float, as_json: bool) -> None:
    """Ask the provider where each batch of RUN_DIR stands (request counts per batch)."""
    from runner.runs.batch import BatchStatus, batch_status, watch_status

    def show(now: BatchStatus) -> None:
        if as_json:
            echo_json(now.to_json())
        else:
            click.echo(now.describe())

    if watch:
        watch_status(run_dir, interval, show)
    else:
        show(batch_status(run_dir))


@batch.command(short_help="Download and save the results of ended batches.")
@run_dir_argument
@click.option("--quiet", "-q", is_flag=True, help="No summary.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON on stdout.")
@reports_errors
@resolves_runs("run_dir")
def fetch(run_dir: Path, quiet: bool, as_json: bool) -> None:
    """Download the results of every ended batch of RUN_DIR and save them as records.

    Exit code 0 when every request has a good answer, 1 otherwise (failed, invalid, or still
    waiting for its batch). Safe to run again.
    """
    from runner.check.validate import load_spec
    from runner.runs.batch import fetch_batch

    _print_result(fetch_batch(run_dir, load_spec), "fetched", quiet, as_json)


@batch.command(short_help="Cancel the batches of RUN_DIR that have not ended.")
@run_dir_argument
@reports_errors
@resolves_runs("run_dir")
def cancel(run_dir: Path) -> None:
    """Cancel every batch of RUN_DIR that has not ended (fetch then saves what was done)."""
    from runner.runs.batch import cancel_batches

    click.echo(cancel_batches(run_dir).describe())


def _print_result(result: BatchResult, verb: str, quiet: bool, as_json: bool) -> None:
    if as_json:
        echo_json(result.to_json())
    elif not quiet:
        click.echo(result.describe(verb), err=True)
    sys.exit(EXIT_OK if result.succeeded or verb == "submitted" else EXIT_FAILED)
