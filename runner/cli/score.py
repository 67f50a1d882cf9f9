"""``runner score RUN_DIR``: score the saved answers of a run again, against current checks."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from runner.cli.options import (
    EXIT_FAILED,
    EXIT_OK,
    echo_json,
    reports_errors,
    resolves_runs,
    run_folder,
)


@click.command(short_help="Score a run's saved answers again against expect: checks.")
@click.argument("run_dir", type=run_folder)
@click.option(
    "--spec",
    "spec_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Score with this spec file instead of the run's spec of the same name (repeatable).",
)
@click.option(
    "--fail-on-expect", is_flag=True, help="Exit 1 when any answer fails its checks (for CI)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON on stdout.")
@reports_errors
@resolves_runs("run_dir")
def score(run_dir: Path, spec_files: tuple[Path, ...], fail_on_expect: bool, as_json: bool) -> None:
    """Score the saved answers of RUN_DIR against the specs' current expect: checks.

    Sends nothing. The new results replace the old ones in the run's records and manifest.
    Exit code 0 (1 with --fail-on-expect when any check fails), 2 for usage errors.
    """
    from runner.check.validate import load_spec
    from runner.results.rescore import score_run

    result = score_run(run_dir, load_spec, spec_files)
    if as_json:
        echo_json(result.to_json())
    else:
        click.echo(result.describe(), err=True)
    sys.exit(EXIT_FAILED if fail_on_expect and result.expectations_failed else EXIT_OK)
