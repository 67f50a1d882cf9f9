"""Command line: parse arguments, call one library function per command, print the outcome.

Heavy modules are imported inside the commands so that ``runner --help`` stays fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from runner import __version__
from runner.errors import RenderError, RunnerError, SpecError, UsageError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


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
        except RunnerError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_FAILED)

    return wrapper  # type: ignore[return-value]


existing_paths = click.Path(exists=True, path_type=Path)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="runner")
def cli() -> None:
    """Run LLM chat-completion requests described by YAML spec files."""


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=existing_paths)
@click.option("--quiet", "-q", is_flag=True, help="Print only problems, no summary.")
@reports_errors
def validate(paths: tuple[Path, ...], quiet: bool) -> None:
    """Check spec files (or folders of them) and report every problem found.

    Exit code 0 when all specs are valid, 1 when any is not.
    """
    from runner.validate import validate_paths

    result = validate_paths(paths)
    for problem in result.problems:
        click.echo(str(problem))
    if not quiet:
        bad = len({p.path for p in result.problems})
        summary = (
            f"{result.files} spec(s) valid"
            if result.ok
            else f"{len(result.problems)} problem(s) in {bad} of {result.files} file(s)"
        )
        click.echo(summary, err=True)
    if result.files == 0:
        raise UsageError("no spec files (*.yaml, *.yml) found in the paths given")
    sys.exit(EXIT_OK if result.ok else EXIT_FAILED)


@cli.command()
@click.argument("spec_path", metavar="SPEC", type=existing_paths)
@click.option(
    "--var",
    "var_items",
    multiple=True,
    metavar="KEY=VALUE",
    help="Set a template variable (repeatable); overrides the spec's vars.",
)
@click.option("--vars-file", type=existing_paths, help="YAML or JSON file of template variables.")
@reports_errors
def render(spec_path: Path, var_items: tuple[str, ...], vars_file: Path | None) -> None:
    """Print the exact JSON request body SPEC would send. Sends nothing."""
    import json

    from runner.render import render_request
    from runner.validate import load_spec
    from runner.variables import read_variables

    spec = load_spec(spec_path)
    request = render_request(spec, read_variables(var_items, vars_file))
    click.echo(json.dumps(request.body, indent=2, ensure_ascii=False))


@cli.command()
@click.argument("paths", nargs=-1, type=existing_paths)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=Path("runs"),
    show_default=True,
    envvar="RUNNER_OUT",
    help="Folder that receives run directories.",
)
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
    help="Retries for 429, 5xx and dropped connections.",
)
@click.option(
    "--backoff",
    type=click.FloatRange(min=0),
    default=0.5,
    show_default=True,
    help="Base seconds of the exponential wait between retries (when no retry-after).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=120.0,
    show_default=True,
    help="Seconds to wait for an answer before retrying.",
)
@click.option(
    "--var",
    "var_items",
    multiple=True,
    metavar="KEY=VALUE",
    help="Set a template variable (repeatable).",
)
@click.option("--vars-file", type=existing_paths, help="YAML or JSON file of template variables.")
@click.option(
    "--resume",
    "resume_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Finish an interrupted run in this run directory.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@reports_errors
def run(
    paths: tuple[Path, ...],
    out_dir: Path,
    provider: str | None,
    base_url: str | None,
    api_key_env: str | None,
    concurrency: int,
    rpm: float | None,
    tpm: float | None,
    retries: int,
    backoff: float,
    timeout: float,
    var_items: tuple[str, ...],
    vars_file: Path | None,
    resume_dir: Path | None,
    quiet: bool,
    as_json: bool,
) -> None:
    """Validate specs, send their requests and save the results in a new run directory.

    Exit code 0 when every request succeeded with valid output, 1 when any failed or
    returned invalid output, 2 for usage errors.
    """
    from runner.execute import RunSettings, resume_run, start_run
    from runner.providers import ProviderOverride
    from runner.transport import RetryPolicy, Timeouts
    from runner.validate import load_spec, validate_paths
    from runner.variables import read_variables

    if bool(paths) == bool(resume_dir):
        raise UsageError("give spec files or folders to run, or --resume RUN_DIR (not both)")
    show = _progress_printer(quiet or as_json)
    if resume_dir is not None:
        summary = resume_run(resume_dir, load_spec, show)
    else:
        validation = validate_paths(paths)
        if not validation.ok:
            raise SpecError(validation.problems)
        if not validation.specs:
            raise UsageError("no spec files (*.yaml, *.yml) found in the paths given")
        settings = RunSettings(
            provider=ProviderOverride(provider, base_url, api_key_env),
            concurrency=concurrency,
            rpm=rpm,
            tpm=tpm,
            retry=RetryPolicy(retries=retries, backoff_factor=backoff),
            timeouts=Timeouts(read=timeout),
            variables=read_variables(var_items, vars_file),
        )
        summary = start_run(validation.specs, settings, out_dir, show)
    if as_json:
        import json

        click.echo(json.dumps(summary.to_json(), indent=2))
    elif not quiet:
        click.echo(summary.describe(), err=True)
    sys.exit(EXIT_OK if summary.succeeded else EXIT_FAILED)


def _progress_printer(quiet: bool) -> Callable[[dict[str, Any], int, int], None] | None:
    """A progress bar on a terminal; nothing when quiet or when stderr is not a terminal."""
    if quiet or not sys.stderr.isatty():
        return None
    bad = 0

    def show(record: dict[str, Any], done: int, total: int) -> None:
        nonlocal bad
        bad += record["status"] != "ok"
        filled = 30 * done // max(total, 1)
        click.echo(
            f"\r[{'#' * filled}{'.' * (30 - filled)}] {done}/{total}"
            + (f"  {bad} not ok" if bad else ""),
            err=True,
            nl=done == total,
        )

    return show


@cli.command()
def schema() -> None:
    """Print the spec JSON Schema (for editors and other tools)."""
    from runner.validate import spec_schema_text

    click.echo(spec_schema_text(), nl=False)


def main() -> None:
    """Console entry point."""
    cli()
