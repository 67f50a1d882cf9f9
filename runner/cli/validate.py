"""``runner validate``, ``runner render`` and ``runner schema``: specs checked and shown,
nothing sent."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from runner.cli.options import (
    EXIT_FAILED,
    EXIT_OK,
    allow_key_env_option,
    existing_paths,
    reports_errors,
    selection_options,
    variables_options,
)
from runner.errors import Problem, UsageError, plural

if TYPE_CHECKING:
    from runner.check.validate import Validation
    from runner.spec.cases import Selection


@click.command(short_help="Check specs and report every problem at its file:line:col.")
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
@click.option(
    "--fix",
    is_flag=True,
    help="Apply the safe fixes in place (comments and layout kept) and print them as a diff.",
)
@click.option("--diff", is_flag=True, help="Print the safe fixes as a diff; change nothing.")
@click.option(
    "--online",
    is_flag=True,
    help="Also check each model against the provider's live GET /models (needs the key).",
)
@click.option("--provider", envvar="RUNNER_PROVIDER", help="Check against this provider.")
@click.option("--base-url", envvar="RUNNER_BASE_URL", help="Check against this server.")
@click.option("--api-key-env", help="With --online: the variable holding the key.")
@allow_key_env_option
@reports_errors
def validate(
    paths: tuple[Path, ...],
    quiet: bool,
    kind: str,
    fix: bool,
    diff: bool,
    online: bool,
    provider: str | None,
    base_url: str | None,
    api_key_env: str | None,
) -> None:
    """Check spec files (or folders of them) and report every problem found.

    With --fix, first apply every fix that is one unambiguous correction, then report what is
    left. With --online, also check each model against the provider's live model list.
    Exit code 0 when all specs are valid, 1 when any is not.
    """
    from runner.api import check_models_online, validate_specs
    from runner.check.formats import format_problems

    if fix or diff:
        result = _fix(paths, write=not diff, kind=kind, quiet=quiet)
    else:
        result = validate_specs(*paths, provider=provider, base_url=base_url)
    if result.files == 0:
        raise UsageError("no spec files (*.yaml, *.yml) found in the paths given")
    if online:
        result.problems += check_models_online(result, provider, base_url, api_key_env)
    text = format_problems(result.problems, kind, result.files)  # type: ignore[arg-type]
    if text:
        click.echo(text)
    if not quiet and kind == "text":
        click.echo(_summary(result, result.errors, result.warnings), err=True)
    sys.exit(EXIT_OK if result.ok else EXIT_FAILED)


def _fix(paths: tuple[Path, ...], *, write: bool, kind: str, quiet: bool) -> Validation:
    """Print the fixes as a unified diff (stdout) and the files left alone (stderr)."""
    from runner.check.fix import fix_paths

    if kind != "text":
        raise UsageError("--fix and --diff print a diff: use them with --format text")
    outcome = fix_paths(paths, write=write)
    for file in outcome.files:
        if file.changed:
            click.echo(file.diff(), nl=False)
        elif file.refused:
            click.echo(f"{file.display}: not fixed: {file.refused}", err=True)
    if not quiet:
        done = "fixed" if write else "fixable"
        changed = sum(1 for f in outcome.files if f.changed)
        click.echo(
            f"{plural(outcome.fixed, 'problem')} {done} in {plural(changed, 'file')}", err=True
        )
    return outcome.validation


@click.command()
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


@click.command()
def schema() -> None:
    """Print the spec JSON Schema (for editors and other tools)."""
    from runner.check.validate import spec_schema_text

    click.echo(spec_schema_text(), nl=False)


def _summary(result: Validation, errors: list[Problem], warnings: list[Problem]) -> str:
    """ "3 specs valid", "3 specs valid, 1 warning", "2 problems in 1 of 3 files"..."""
    warned = f", {plural(len(warnings), 'warning')}" if warnings else ""
    if not errors:
        return f"{plural(result.files - result.settings, 'spec')} valid{warned}"
    bad = len({p.path for p in errors})
    files = result.files
    if bad > files:  # problems in the files they use too (an extends: base, a judge)
        where = f"{plural(bad, 'file')} (of {plural(files, 'spec')} checked and the files they use)"
    else:
        where = f"{bad} of {plural(files, 'file')}"
    return f"{plural(len(errors), 'problem')} in {where}{warned}"
