"""Command line: parse arguments, call one library function per command, print the outcome.

Heavy modules are imported inside the commands so that ``runner --help`` stays fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import click

from runner.errors import (
    RenderError,
    RunInterrupted,
    RunnerError,
    RunStopped,
    SpecError,
    Terminated,
    UsageError,
)
from runner.version import __version__

if TYPE_CHECKING:
    from runner.spec.cases import Selection

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_LIMIT, EXIT_TERMINATED = 75, 143  # 75: sysexits' EX_TEMPFAIL, "try again later"


def reports_errors(command: F) -> F:
    """Print a RunnerError as the user's mistake it is, with the right exit code."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except SpecError as exc:
            for problem in exc.problems:
                click.echo(str(problem), err=True)
            sys.exit(EXIT_FAILED)
        except RenderError as exc:
            click.echo(str(exc.problem), err=True)
            sys.exit(EXIT_FAILED)
        except UsageError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_USAGE)
        except RunInterrupted as exc:
            click.echo(str(exc), err=True)
            sys.exit(EXIT_TERMINATED if exc.terminated else EXIT_INTERRUPTED)
        except RunStopped as exc:
            click.echo(str(exc), err=True)
            sys.exit(EXIT_LIMIT)
        except RunnerError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_FAILED)

    return wrapper  # type: ignore[return-value]


existing_paths = click.Path(exists=True, path_type=Path)


def selection_options(command: F) -> F:
    """--case, --limit, --sample and --sample-seed, handed to the command as ``selection``."""

    @click.option(
        "--case",
        "case_ids",
        multiple=True,
        metavar="ID",
        help="Only the case with this id (repeatable).",
    )
    @click.option(
        "--limit", type=click.IntRange(min=1), help="Only the first N cases of each spec."
    )
    @click.option(
        "--sample",
        type=click.IntRange(min=1),
        help="A random sample of N cases of each spec (the same for the same --sample-seed).",
    )
    @click.option("--sample-seed", type=int, default=0, show_default=True, help="Seed of --sample.")
    @wraps(command)
    def wrapper(
        *args: Any,
        case_ids: tuple[str, ...],
        limit: int | None,
        sample: int | None,
        sample_seed: int,
        **kwargs: Any,
    ) -> Any:
        from runner.spec.cases import Selection

        if limit is not None and sample is not None:
            raise click.UsageError("give --limit or --sample, not both")
        return command(*args, selection=Selection(case_ids, limit, sample, sample_seed), **kwargs)

    return wrapper  # type: ignore[return-value]


def variables_options(command: F) -> F:
    """--var and --vars-file, read and handed to the command as ``variables``. Goes under
    ``reports_errors``: an unreadable --vars-file is a mistake to report, not a traceback."""

    @click.option(
        "--var",
        "var_items",
        multiple=True,
        metavar="KEY=VALUE",
        help="Set a template variable (repeatable); overrides the specs' vars and cases.",
    )
    @click.option(
        "--vars-file", type=existing_paths, help="YAML or JSON file of template variables."
    )
    @wraps(command)
    def wrapper(
        *args: Any, var_items: tuple[str, ...], vars_file: Path | None, **kwargs: Any
    ) -> Any:
        from runner.spec.variables import read_variables

        return command(*args, variables=read_variables(var_items, vars_file), **kwargs)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="runner")
def cli() -> None:
    """Run LLM chat-completion requests described by YAML spec files."""


def out_dir_option(command: F) -> F:
    """--out DIR (default runs, or $RUNNER_OUT), handed to the command as ``out_dir``."""
    return click.option(
        "--out",
        "out_dir",
        type=click.Path(path_type=Path),
        default=Path("runs"),
        show_default=True,
        envvar="RUNNER_OUT",
        help="Folder that receives run directories.",
    )(command)


def allow_key_env_option(command: F) -> F:
    """--allow-key-env NAME (repeatable), handed to the command as ``allow_key_env``."""
    return click.option(
        "--allow-key-env",
        multiple=True,
        metavar="NAME",
        help="Let specs use this environment variable as the key of an endpoint they define "
        "(repeatable; or list it under allow_key_env in runner.yaml).",
    )(command)


@cli.command(short_help="Check specs and report every problem at its file:line:col.")
@click.argument("paths", nargs=-1, required=True, type=existing_paths)
@click.option("--quiet", "-q", is_flag=True, help="Print only problems, no summary.")
@click.option(
    "--format",
    "kind",
    type=click.Choice(["text", "github", "json"]),
    default="text",
    show_default=True,
    help="text: file:line:col lines; github: GitHub Actions annotations; json: one document.",
)
@allow_key_env_option
@reports_errors
def validate(
    paths: tuple[Path, ...], quiet: bool, kind: str, allow_key_env: tuple[str, ...]
) -> None:
    """Check spec files (or folders of them) and report every problem found.

    Exit code 0 when all specs are valid, 1 when any is not.
    """
    from runner.api import validate_specs
    from runner.check.formats import format_problems

    result = validate_specs(*paths, allow_key_env=allow_key_env)
    if result.files == 0:
        raise UsageError("no spec files (*.yaml, *.yml) found in the paths given")
    text = format_problems(result.problems, kind, result.files)  # type: ignore[arg-type]
    if text:
        click.echo(text)
    if not quiet and kind == "text":
        bad = len({p.path for p in result.problems})
        summary = (
            f"{result.files} spec(s) valid"
            if result.ok
            else f"{len(result.problems)} problem(s) in {bad} of {result.files} file(s)"
        )
        click.echo(summary, err=True)
    sys.exit(EXIT_OK if result.ok else EXIT_FAILED)


@cli.command()
@click.argument("spec_path", metavar="SPEC", type=existing_paths)
@selection_options
@reports_errors
@variables_options
def render(spec_path: Path, variables: dict[str, Any], selection: Selection) -> None:
    """Print the exact JSON request body SPEC would send. Sends nothing.

    A spec with cases or a matrix prints a JSON list of {"id", "body"}, one per request.
    """
    from runner.api import render_spec
    from runner.spec.render import requests_json

    requests = render_spec(
        spec_path,
        variables,
        cases=selection.case_ids,
        limit=selection.limit,
        sample=selection.sample,
        sample_seed=selection.seed,
    )
    click.echo(requests_json([(request.id, request.body) for request in requests]))


@cli.command(short_help="Validate specs, send their requests and save the results.")
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
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Finish an interrupted run in this run directory.",
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
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@allow_key_env_option
@selection_options
@reports_errors
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
    quiet: bool,
    as_json: bool,
    selection: Selection,
    allow_key_env: tuple[str, ...],
    **options: Any,
) -> None:
    """Validate specs, send their requests and save the results in a new run directory.

    Exit code 0 when every request succeeded with valid output, 1 when any failed or
    returned invalid output (or, with --fail-on-expect, failed an expectation), 2 for usage
    errors, 75 when a provider's limit stopped the run (resume it after the reset), 130 after
    Ctrl-C and 143 after SIGTERM.
    """
    from runner.api import plan_specs, resume_run, run_specs
    from runner.runs.progress import progress_for

    if bool(paths) == bool(resume_dir):
        raise UsageError("give spec files or folders to run, or --resume RUN_DIR (not both)")
    cache = _cache_mode(no_cache, refresh, replay_file, dry_run, resume_dir)
    show = progress_for(quiet or as_json, _progress_every())
    if resume_dir is not None:
        if selection.case_ids or selection.limit or selection.sample:
            raise UsageError("--resume runs the cases of the run it resumes; drop the selection")
        with _sigterm_stops_like_ctrl_c():
            summary = resume_run(resume_dir, show)
    else:
        run_options = _run_options(options, cache, replay_file, selection, allow_key_env)
        if dry_run:
            plan = plan_specs(*paths, options=run_options)
            if as_json:
                _echo_json(plan.to_json())
            else:
                click.echo(plan.describe())
            sys.exit(EXIT_OK)
        text = _text_printer(quiet or as_json)
        with _sigterm_stops_like_ctrl_c():
            summary = run_specs(
                *paths,
                out=out_dir,
                options=run_options,
                on_record=text.around(show) if text else show,
                on_text=text,
            )
    if as_json:
        _echo_json(summary.to_json())
    elif not quiet:
        click.echo(summary.describe(), err=True)
    passed = summary.succeeded and not (fail_on_expect and summary.expectations_failed)
    sys.exit(EXIT_OK if passed else EXIT_FAILED)


# Sending options of run that batch submit may leave out.
_RUN_ONLY_OPTIONS = ("concurrency", "rpm", "tpm", "backoff", "max_wait", "idle_timeout", "stream")


def _run_options(
    options: dict[str, Any],
    cache: str,
    replay: Path | None,
    selection: Selection,
    allow_key_env: tuple[str, ...],
) -> Any:
    """The API's RunOptions from the sending options of run (or of batch submit, which lacks
    run's pacing options: those keep RunOptions' defaults)."""
    from runner.api import RunOptions

    return RunOptions(
        provider=options["provider"],
        base_url=options["base_url"],
        api_key_env=options["api_key_env"],
        allow_key_env=allow_key_env,
        retries=options["retries"],
        timeout=options["timeout"],
        **{name: options[name] for name in _RUN_ONLY_OPTIONS if name in options},
        variables=options["variables"],
        cases=selection.case_ids,
        limit=selection.limit,
        sample=selection.sample,
        sample_seed=selection.seed,
        cache=cache,  # type: ignore[arg-type]
        replay=replay,
    )


def _echo_json(data: Any) -> None:
    import json

    click.echo(json.dumps(data, indent=2))


def _cache_mode(
    no_cache: bool,
    refresh: bool,
    replay: Path | None,
    dry_run: bool,
    resume_dir: Path | None,
) -> Literal["use", "refresh", "off"]:
    """The cache mode the run options ask for; conflicting options are usage errors."""
    if resume_dir is not None and (no_cache or refresh or replay or dry_run):
        raise UsageError("--resume keeps the cache and replay settings of the run it resumes")
    if no_cache and refresh:
        raise UsageError("--no-cache and --refresh cannot go together")
    if replay is not None and refresh:
        raise UsageError("--replay sends nothing, so there is nothing to --refresh")
    if no_cache or replay is not None:
        return "off"
    return "refresh" if refresh else "use"


def _progress_every() -> float | None:
    """Seconds between progress lines off a terminal, from RUNNER_PROGRESS_EVERY."""
    import os

    try:
        return float(os.environ["RUNNER_PROGRESS_EVERY"])
    except (KeyError, ValueError):
        return None


@contextmanager
def _sigterm_stops_like_ctrl_c() -> Iterator[None]:
    """SIGTERM ends a run the way Ctrl-C does: answers in flight saved, the manifest marked."""
    import signal
    import threading

    def terminate(signum: int, frame: Any) -> None:
        raise Terminated()

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _TextPrinter:
    """A streamed answer's text, printed as it arrives, then a line end."""

    def __init__(self) -> None:
        self.printed = False

    def __call__(self, text: str) -> None:
        click.echo(text, nl=False)
        self.printed = True

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


@cli.command()
@click.argument("run_a", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("run_b", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@reports_errors
def diff(run_a: Path, run_b: Path, as_json: bool) -> None:
    """Compare two run directories record by record.

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
        for line in result.text():
            click.echo(line)
    sys.exit(EXIT_OK if result.counts.identical else EXIT_FAILED)


@cli.group(short_help="The project's response cache (runner cache clear).")
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
        click.echo(f"deleted {responses.clear()} cached answer(s) from {location}", err=True)
    finally:
        responses.close()


@cli.command()
def schema() -> None:
    """Print the spec JSON Schema (for editors and other tools)."""
    from runner.check.validate import spec_schema_text

    click.echo(spec_schema_text(), nl=False)


from runner.cli.batch import batch  # noqa: E402
from runner.cli.init import init  # noqa: E402
from runner.cli import report as cli_report  # noqa: E402  (its commands use reports_errors above)
from runner.cli.score import score  # noqa: E402

cli_report.register(cli)
cli.add_command(batch)
cli.add_command(init)
cli.add_command(score)


def main() -> None:
    """Console entry point."""
    try:
        cli()
    except KeyboardInterrupt as exc:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED)
