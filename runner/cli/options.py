"""Options and output helpers that every command shares: how errors are printed and exit
codes chosen, the selection, variable and output options, and run options for the API.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
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
# A run folder as typed: a path, a run id, latest or latest~N (see resolves_runs).
run_folder: click.Path = click.Path(path_type=Path)


def resolves_runs(*names: str) -> Callable[[F], F]:
    """Turn the named arguments (a run folder's path, a run id, ``latest`` or ``latest~N``, or a
    tuple of them) into run directories before the command runs. Goes under
    ``reports_errors``: a name that is no run is reported with the closest and latest runs."""

    def decorate(command: F) -> F:
        @wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            from runner.runs.lookup import resolve_run

            for name in names:
                value = kwargs.get(name)
                if isinstance(value, tuple):
                    kwargs[name] = tuple(resolve_run(v) for v in value)
                elif value is not None:
                    kwargs[name] = resolve_run(value)
            return command(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def echo_shown(lines: Iterable[str]) -> None:
    """Records as ``runner show`` prints them: on a terminal, each heading in bold and each
    failed check or error in red (click drops the styles elsewhere)."""
    for line in lines:
        if line and not line.startswith(" "):
            line = click.style(line, bold=True)
        elif line.startswith("  FAIL ") or line.startswith("  error"):
            line = click.style(line, fg="red")
        click.echo(line)


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
    """--allow-key-env NAME, no longer taken: it says what replaced it (runner trust)."""

    def refuse(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> None:
        from runner.providers.trust import refuse_allow_list

        try:
            refuse_allow_list(value)
        except UsageError as exc:
            raise click.UsageError(str(exc), ctx) from None

    return click.option(
        "--allow-key-env",
        multiple=True,
        metavar="NAME",
        hidden=True,
        expose_value=False,
        callback=refuse,
        help="No longer taken: see runner trust.",
    )(command)


# Sending options of run that batch submit may leave out.
RUN_ONLY_OPTIONS = ("concurrency", "rpm", "tpm", "backoff", "max_wait", "idle_timeout", "stream")


def run_options(
    options: dict[str, Any],
    cache: str,
    replay: Path | None,
    selection: Selection,
) -> Any:
    """The API's RunOptions from the sending options of run (or of batch submit, which lacks
    run's pacing options: those keep RunOptions' defaults)."""
    from runner.api import RunOptions

    return RunOptions(
        provider=options["provider"],
        base_url=options["base_url"],
        api_key_env=options["api_key_env"],
        retries=options["retries"],
        timeout=options["timeout"],
        **{name: options[name] for name in RUN_ONLY_OPTIONS if name in options},
        variables=options["variables"],
        cases=selection.case_ids,
        limit=selection.limit,
        sample=selection.sample,
        sample_seed=selection.seed,
        cache=cache,  # type: ignore[arg-type]
        replay=replay,
    )


def echo_json(data: Any) -> None:
    import json

    click.echo(json.dumps(data, indent=2))


def cache_mode(
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


def progress_every() -> float | None:
    """Seconds between progress lines off a terminal, from RUNNER_PROGRESS_EVERY."""
    import os

    try:
        return float(os.environ["RUNNER_PROGRESS_EVERY"])
    except (KeyError, ValueError):
        return None


@contextmanager
def sigterm_stops_like_ctrl_c() -> Iterator[None]:
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


def print_on_any_console() -> None:
    """On a console that is not UTF-8 (Windows' cp1252, a pipe read with another encoding) a
    character it cannot show prints as an escape (``\\U0001f389``) instead of ending the
    command with UnicodeEncodeError: answers, names and messages may hold any character."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and getattr(stream, "errors", None) == "strict":
            reconfigure(errors="backslashreplace")


def die_quietly_on_a_closed_pipe() -> None:
    """``runner diff | head``: once the reader has gone, end at the next write as command-line
    tools do (by SIGPIPE), with no message and no traceback."""
    import signal

    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)


def print_runner_warnings() -> None:
    """Library warnings (``RunnerWarning``) print to stderr as ``file:line:col: warning: ...``,
    every time; other warnings keep Python's own handling."""
    import warnings

    from runner.errors import RunnerWarning

    default = warnings.showwarning

    def show(message: Any, category: Any, *args: Any, **kwargs: Any) -> None:
        if issubclass(category, RunnerWarning):
            click.echo(str(message), err=True)
        else:
            default(message, category, *args, **kwargs)

    warnings.simplefilter("always", RunnerWarning)
    warnings.showwarning = show


def print_plan(plan: Any, as_json: bool) -> None:
    """A dry run's plan (runner run, runner batch submit), then exit 0."""
    if as_json:
        echo_json(plan.to_json())
    else:
        click.echo(plan.describe())
    sys.exit(EXIT_OK)
