"""Command line: parse arguments, call one library function per command, print the outcome.

This module only gathers the commands into the ``runner`` group; each command family lives in
a module of its own beside it, and shared options in ``options.py``. Heavy modules are imported
inside the commands so that ``runner --help`` stays fast.
"""

from __future__ import annotations

import sys

import click

from runner.cli import batch, cache, init, models, report, run, score, trust, validate
from runner.cli.options import (
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    die_quietly_on_a_closed_pipe,
    print_on_any_console,
    print_runner_warnings,
)
from runner.errors import Terminated
from runner.version import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="runner")
def cli() -> None:
    """Run LLM chat-completion requests described by YAML spec files."""


for command in (
    validate.validate,
    validate.render,
    run.run,
    report.diff,
    cache.cache,
    validate.schema,
    batch.batch,
    init.init,
    score.score,
    trust.trust,
    models.models,
):
    cli.add_command(command)
report.register(cli)


def main() -> None:
    """Console entry point."""
    print_on_any_console()
    print_runner_warnings()
    die_quietly_on_a_closed_pipe()
    try:
        cli()
    except KeyboardInterrupt as exc:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED)
