"""Check spec files and turn them into Spec objects: the orchestrator of the checks.

All problems of all files are reported in one pass. For each file:
1. the published JSON Schema (``runner/validate_schema.py``): keys, types, ranges; a file that
   breaks it goes no further;
2. the Spec is built, each part checked as it is built: templates (``validate_templates.py``),
   cases and matrix (``validate_cases.py``), response schemas and tools with their ``$ref``
   files (``validate_request.py``, ``validate_refs.py``);
3. every function in ``CHECKS`` runs on the built Spec;
4. when nothing is wrong so far, every request is rendered as ``render``/``run`` will
   (``validate_render.py``): what they would refuse is reported here first.

Adding a check (the hook): write ``check_x(file: SpecFile, spec: Spec) -> Iterable[Problem]``
in its own module ``runner/validate_<concern>.py`` (see ``runner/validate_context.py``: the
file's data, positions, project folder and ``file.problem(path, message, hint)``), and add it
to ``CHECKS`` below with one line. A check only reports; it never raises for a user's mistake.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.check.cases import build_cases, build_matrix
from runner.check.codes import silenced, with_code
from runner.check.context import Check, SpecFile
from runner.check.expect import check_expectations
from runner.check.images import check_images
from runner.check.judges import build_judges, check_judges
from runner.check.models import check_model
from runner.check.provider_rules import (
    check_content_parts,
    check_reasoning_format,
    check_tool_messages,
    check_tool_parameters,
)
from runner.check.render import render_problems
from runner.check.request import (
    build_output_schema,
    build_provider,
    build_tools,
    check_json_mode_mentions_json,
    check_project_config,
    check_provider_label,
    check_provider_url,
    check_token_limits,
    check_tool_choice,
)
from runner.check.schema import schema_problems, spec_schema_text
from runner.check.templates import (
    build_messages,
    unused_variables,
    variables_used,
    variables_without_value,
)
from runner.errors import Problem, SpecError, warn
from runner.spec.expectations import parse_checks
from runner.spec.extends import with_bases
from runner.spec.load import load_yaml
from runner.spec.objects import RUNNER_KEYS, Provider, Spec
from runner.spec.project import (
    CONFIG_FILE,
    ProjectConfig,
    display_path,
    find_project_root,
    forget_projects,
    project_config,
)

SPEC_SUFFIXES = (".yaml", ".yml")
# Folders inside a spec folder that hold other things than specs.
NOT_SPEC_FOLDERS = frozenset({"data", "templates", "schemas", "runs", "judges"})

# Checks run on every schema-valid spec once its Spec is built, in this order.
CHECKS: list[Check] = [
    check_tool_choice,
    check_token_limits,
    check_json_mode_mentions_json,
    check_provider_label,
    check_provider_url,
    check_project_config,
    check_expectations,
    check_judges,
    check_images,
    check_tool_parameters,
    check_content_parts,
    check_tool_messages,
    check_reasoning_format,
    check_model,
]


@dataclass
class Validation:
    """The outcome of validating many files: the good specs and every problem found."""

    specs: list[Spec] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    files: int = 0
    settings: int = 0  # of the files, how many are runner.yaml (checked as project settings)

    @property
    def ok(self) -> bool:
        """True when no problem is an error (warnings alone leave the specs usable)."""
        return not self.errors

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.is_error]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if not p.is_error]


def find_spec_files(paths: Iterable[Path]) -> list[Path]:
    """Every spec file named by ``paths``: files as given, folders searched recursively.

    In folders, files and folders whose names start with '.' or '_' are skipped (so a base
    spec or partial can be named ``_base.yaml``), as are folders named data, templates,
    schemas and runs. A link to a folder is followed only inside the project, and each
    folder is searched once: a link out of the project is a warning, never a walk of ``/``.
    """
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            root = find_project_root(path.resolve())
            found.extend(sorted(_walk(path, root, set())))
        else:
            found.append(path)
    return found


def _walk(folder: Path, root: Path, searched: set[tuple[int, int]]) -> Iterator[Path]:
    try:
        stat = folder.stat()
        entries = sorted(folder.iterdir())
    except OSError as exc:
        message = f"cannot search this folder for specs: {exc.strerror}"
        warn(Problem(str(folder), message, severity="warning"))
        return
    if (stat.st_dev, stat.st_ino) in searched:
        return
    searched.add((stat.st_dev, stat.st_ino))
    for entry in entries:
        if entry.name.startswith((".", "_")):
            continue
        if entry.is_dir():
            if entry.name in NOT_SPEC_FOLDERS:
                continue
            if entry.is_symlink():
                target = entry.resolve()
                if target != root and root not in target.parents:
                    warn(
                        Problem(
                            str(entry),
                            f"a link out of the project (to {target}): not searched for specs",
                            severity="warning",
                        )
                    )
                    continue
            yield from _walk(entry, root, searched)
        elif entry.suffix in SPEC_SUFFIXES:
            yield entry


def validate_paths(
    paths: Iterable[Path],
    variables: Mapping[str, Any] | None = None,
    provider: Provider | None = None,
) -> Validation:
    """Validate every spec file under ``paths``, collecting all problems. ``variables`` are
    the command line's template variables, which win over the specs' and cases'; ``provider``
    the provider it sets over the specs' own (their models are checked against its table)."""
    result = Validation()
    forget_projects()
    seen: set[Problem] = set()
    for path in find_spec_files(paths):
        result.files += 1
        if path.name == CONFIG_FILE:  # a project's settings, not a spec
            result.settings += 1
            try:
                project_config(path.parent)
            except SpecError as exc:
                result.problems.extend(p for p in exc.problems if p not in seen)
                seen.update(exc.problems)
            continue
        try:
            spec, warnings = check_spec(path, variables, provider)
            result.specs.append(spec)
            result.problems.extend(p for p in warnings if p not in seen)
            seen.update(warnings)
        except SpecError as exc:
            # one runner.yaml mistake is found through each spec of its project: once is enough
            result.problems.extend(p for p in exc.problems if p not in seen)
            seen.update(exc.problems)
    result.problems.extend(_repeated_names(result.specs))
    if variables and result.ok:  # with errors, a spec that would read a variable may be missing
        result.problems.extend(unused_variables(variables, result.specs))
    configs = [_config(spec.path) for spec in result.specs]
    result.problems = silenced([with_code(p) for p in result.problems], configs)
    return result


def _config(path: Path) -> ProjectConfig:
    """The runner.yaml settings of a spec's project (none when it is broken: reported)."""
    try:
        return project_config(find_project_root(path))
    except SpecError:
        return ProjectConfig()


def _repeated_names(specs: list[Spec]) -> Iterator[Problem]:
    seen: dict[str, Spec] = {}
    for spec in specs:
        first = seen.setdefault(spec.name, spec)
        if first is not spec:
            yield Problem(
                spec.display,
                f"spec name '{spec.name}' is also used by {first.display}",
                1,
                1,
                "give each spec its own 'name:'; outputs are filed under it",
            )


def load_spec(path: Path, variables: Mapping[str, Any] | None = None) -> Spec:
    """Load and fully check one spec file; raise SpecError listing every problem in it.

    ``variables`` are the command line's template variables (--var, --vars-file). Warnings go
    to the caller through ``warn``."""
    spec, warnings = check_spec(path, variables)
    unused = unused_variables(variables or {}, [spec])
    for problem in silenced([with_code(p) for p in [*warnings, *unused]], [_config(path)]):
        warn(problem)
    return spec


def check_spec(
    path: Path, variables: Mapping[str, Any] | None = None, provider: Provider | None = None
) -> tuple[Spec, list[Problem]]:
    """One spec file loaded and fully checked, with its warnings; raises SpecError listing
    every problem (errors and warnings) when any is an error."""
    display = display_path(path)
    doc, bases = with_bases(load_yaml(path, display))
    problems = schema_problems(doc, display)
    if problems:
        raise SpecError(problems)
    file = SpecFile.of(doc, display, bases, variables, provider)
    spec = _build(file, problems)
    for check in CHECKS:
        problems.extend(check(file, spec))
    if not any(p.is_error for p in problems):
        problems += render_problems(file, spec)
    problems.sort(key=lambda p: (p.line or 0, p.column or 0))
    if any(p.is_error for p in problems):
        raise SpecError(problems)
    return spec, problems


def _build(file: SpecFile, problems: list[Problem]) -> Spec:
    """The Spec a schema-valid file describes; what is wrong in its parts goes to ``problems``."""
    data = file.data
    params = {
        k: v for k, v in data.items() if k not in RUNNER_KEYS and k not in ("model", "messages")
    }
    output = build_output_schema(file, params, problems)
    tools = build_tools(file, params, problems)
    messages = build_messages(file, problems)
    cases = build_cases(file, variables_without_value(file, problems), problems)
    matrix = build_matrix(file, problems)
    params.update(data.get("extra_body") or {})
    digest = hashlib.sha256(file.doc.text.encode())
    for base in file.bases:
        digest.update(base.text.encode())
    return Spec(
        path=file.doc.path,
        display=file.display,
        sha256=digest.hexdigest(),
        name=data.get("name") or file.doc.path.stem,
        model=data["model"],
        messages=messages,
        params=params,
        vars=data.get("vars") or {},
        provider=build_provider(data.get("provider")),
        description=data.get("description"),
        tools=tools,
        output=output,
        cases=cases,
        matrix=matrix,
        bases=tuple(base.display for base in file.bases),
        expect=parse_checks(data.get("expect") or ()),
        variables_used=variables_used(file),
        judges=build_judges(file, problems, load_spec),
    )


__all__ = [
    "CHECKS",
    "Validation",
    "find_spec_files",
    "load_spec",
    "spec_schema_text",
    "validate_paths",
]
