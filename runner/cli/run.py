"""``runner run``: specs validated, their requests sent and the results saved."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from runner.cli.options import (
    EXIT_FAILED,
    EXIT_OK,
    allow_key_env_option,
    cache_mode,
    echo_json,
    echo_shown,
    existing_paths,
    out_dir_option,
    print_plan,
    progress_every,
    reports_errors,
    resolves_runs,
    run_folder,
    run_options,
    selection_options,
    sigterm_stops_like_ctrl_c,
    variables_options,
)
from runner.errors import UsageError

SHOW_AT_MOST = 20  # records of a run whose answers runner run prints on a terminal

if TYPE_CHECKING:
    from collections.abc import Callable

    from runner.spec.cases import Selection


@click.command(short_help="Validate specs, send their requests and save the results.")
@click.argument("paths", nargs=-1, type=existing_paths)
@out_dir_option
@click.option(
    "--provider",
    envvar="RUNNER_PROVIDER",
    help="groq, openai, offline, or a label for --base-url. Overrides the specs.",
)
@click.option("--base-url", envvar="RUNNER_BASE_URL", help="An OpenAI-compatible API base URL.")
@click.option(
    "--api-key-env",
    metavar="NAME",
    envvar="RUNNER_API_KEY_ENV",
    help="Name of the environment variable that holds the API key.",
)
@click.option(
    "--concurrency",
    "-c",
    type=click.IntRange(1, 512),
    default=8,
    show_default=True,
    envvar="RUNNER_CONCURRENCY",
    help="Requests in flight at once.",
)
@click.option(
    "--rpm",
    type=click.FloatRange(min=0, min_open=True),
    help="Send at most this many requests per minute.",
)
@click.option(
    "--tpm",
    type=click.FloatRange(min=0, min_open=True),
    help="Send at most about this many tokens per minute.",
)
@click.option(
    "--retries",
    type=click.IntRange(0, 20),
    default=5,
    show_default=True,
    help="Retries for 5xx and dropped connections (a 429 waits its turn, within --max-wait).",
)
@click.option(
    "--backoff",
    type=click.FloatRange(min=0),
    default=0.5,
    show_default=True,
    help="Base seconds of the exponential wait between retries (when no retry-after).",
)
@click.option(
    "--max-wait",
    type=click.FloatRange(min=0),
    default=120.0,
    show_default=True,
    envvar="RUNNER_MAX_WAIT",
    help="Longest wait for a provider's rate limit, in seconds; beyond it (a daily limit used "
    "up) the run stops cleanly with exit code 75, to be resumed after the reset.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=120.0,
    show_default=True,
    help="Seconds to wait for an answer before retrying.",
)
@click.option(
    "--idle-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="Streamed requests: seconds to wait for the next chunk of the stream.",
)
@click.option(
    "--stream/--no-stream",
    default=None,
    help="Send every request streamed, or none; default: as each spec says.",
)
@click.option(
    "--resume",
    "resume_dir",
    type=run_folder,
    metavar="RUN",
    help="Finish an interrupted run in this run directory (or latest).",
)
@click.option("--no-cache", is_flag=True, help="Neither read nor write the response cache.")
@click.option("--refresh", is_flag=True, help="Send every request again; update the cache.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="List what would be sent and what comes from the cache; send nothing.",
)
@click.option(
    "--replay",
    "replay_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Answer every request from this cassette (see runner export); no network.",
)
@click.option(
    "--fail-on-expect",
    is_flag=True,
    help="Exit 1 when any answer fails its spec's expect: checks (for CI).",
)
@click.option(
    "--show/--no-show",
    "show_answers",
    default=None,
    help=f"Print each record's answer after the run (default: on a terminal, for runs of up "
    f"to {SHOW_AT_MOST} records; runner show prints them later).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar, no summary, no answers.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@allow_key_env_option
@selection_options
@reports_errors
@resolves_runs("resume_dir")
@variables_options
def run(
    paths: tuple[Path, ...],
    out_dir: Path,
    resume_dir: Path | None,
    no_cache: bool,
    refresh: bool,
    dry_run: bool,
    replay_file: Path | None,
    fail_on_expect: bool,
    show_answers: bool | None,
    quiet: bool,
    as_json: bool,
    selection: Selection,
    **options: Any,
) -> None:
    """Validate specs, send their requests and save the results in a new run directory.

    Exit code 0 when every request succeeded with valid output, 1 when any failed or
    returned invalid output (or, with --fail-on-expect, failed an expectation), 2 for usage
    errors, 75 when a provider's limit stopped the run (resume it after the reset), 130 after
    Ctrl-C and 143 after SIGTERM.

    Ctrl-C (or SIGTERM) stops sending: the answers in flight are awaited and saved, and the
    rest is left for --resume. A second Ctrl-C or SIGTERM, or a SIGTERM whose answers are
    still in flight 5 s later, abandons them at once (the provider may still bill what it had
    begun). Either way the results file and manifest are finished whole. A run directory has
    one writer at a time: a second --resume of a running run is refused (exit 2).
    """
    from runner import api

    _check_arguments(paths, resume_dir, selection, show_answers, as_json)
    cache = cache_mode(no_cache, refresh, replay_file, dry_run, resume_dir)
    if resume_dir is None:
        chosen = run_options(options, cache, replay_file, selection)
        if dry_run:
            print_plan(api.plan_specs(*paths, options=chosen), as_json)
    display = _RunDisplay(quiet, as_json, show_answers)
    with sigterm_stops_like_ctrl_c():
        if resume_dir is not None:
            summary = api.resume_run(
                resume_dir,
                display.progress,
                base_url=options["base_url"],
                api_key_env=options["api_key_env"],
            )
        else:
            summary = api.run_specs(
                *paths,
                out=out_dir,
                options=chosen,
                on_record=display.on_record,
                on_text=display.text,
            )
    display.finish(summary, fail_on_expect)


def _check_arguments(
    paths: tuple[Path, ...],
    resume_dir: Path | None,
    selection: Selection,
    show_answers: bool | None,
    as_json: bool,
) -> None:
    """Refuse options that do not go together, before anything is read."""
    if bool(paths) == bool(resume_dir):
        raise UsageError("give spec files or folders to run, or --resume RUN_DIR (not both)")
    if show_answers and as_json:
        raise UsageError("--show prints the answers as text: give it without --json")
    if resume_dir is not None and (selection.case_ids or selection.limit or selection.sample):
        raise UsageError("--resume runs the cases of the run it resumes; drop the selection")


class _RunDisplay:
    """What runner run shows while it goes and when it ends: the progress, a single streamed
    answer's text, the answers of a small run, the summary; and the exit code."""

    def __init__(self, quiet: bool, as_json: bool, show_answers: bool | None):
        from runner.runs.progress import progress_for

        self.quiet, self.as_json, self.show_answers = quiet, as_json, show_answers
        self.progress = progress_for(quiet or as_json, progress_every())
        self.text = _text_printer(quiet or as_json)
        self.on_record = self.text.around(self.progress) if self.text else self.progress

    def finish(self, summary: Any, fail_on_expect: bool) -> None:
        quiet = self.quiet or self.as_json
        if _shows_answers(self.show_answers, quiet, summary, self.text):
            _echo_answers(summary.run_dir)
        elif self.show_answers is None and not quiet and sys.stdout.isatty():
            click.echo(f"see the answers with: runner show {summary.run_dir}", err=True)
        if self.as_json:
            echo_json(summary.to_json())
        elif not self.quiet:
            click.echo(summary.describe(), err=True)
        passed = summary.succeeded and not (fail_on_expect and summary.expectations_failed)
        sys.exit(EXIT_OK if passed else EXIT_FAILED)


def _shows_answers(
    asked: bool | None, quiet: bool, summary: Any, text: _TextPrinter | None
) -> bool:
    """--show or --no-show as given; otherwise on a terminal, after a run small enough to read
    (and not the one streamed request whose text was printed as it came)."""
    if asked is not None:
        return asked
    if quiet or not sys.stdout.isatty() or (text is not None and text.used):
        return False
    return bool(summary.total + summary.resumed <= SHOW_AT_MOST)


def _echo_answers(run_dir: Path) -> None:
    from runner.results.show import ShownRun

    echo_shown(ShownRun(run_dir).lines())
    click.echo()


class _TextPrinter:
    """A streamed answer's text, printed as it arrives, then a line end."""

    def __init__(self) -> None:
        self.printed = False
        self.used = False  # any text printed during the run

    def __call__(self, text: str) -> None:
        click.echo(text, nl=False)
        self.printed = self.used = True

    def end(self) -> None:
        if self.printed:
            click.echo()
            self.printed = False

    def around(self, progress: Callable[..., None] | None) -> Callable[..., None]:
        """The progress display, starting on a new line after the text."""
        return _AfterText(self, progress)


class _AfterText:
    """A progress display that first ends the streamed text's line; its other calls (waits,
    the end of the run) go straight to the display."""

    def __init__(self, text: _TextPrinter, progress: Callable[..., None] | None):
        self._text = text
        self._progress = progress

    def __call__(self, *args: Any) -> None:
        self._text.end()
        if self._progress is not None:
            self._progress(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._progress, name)


def _text_printer(quiet: bool) -> _TextPrinter | None:
    """Prints a single streamed request's text when stdout is a terminal."""
    return None if quiet or not sys.stdout.isatty() else _TextPrinter()
