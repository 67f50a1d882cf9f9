"""Cases and matrix: inline rows and data files that give the templates their variables, and
request fields the matrix sweeps."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from runner.check.context import SpecFile
from runner.check.schema import field_validator, spec_properties
from runner.errors import Problem, SpecError
from runner.spec.cases import (
    DATA_SUFFIXES,
    CaseSource,
    FilePattern,
    check_cases,
    matching_files,
    pattern_problem,
)
from runner.spec.chain import (
    DEFAULT_STATUS,
    RECORD_VARIABLES,
    RunCases,
    RunFolderError,
    check_finished,
    resolve_run_folder,
)
from runner.spec.document import PathKey
from runner.spec.objects import RUNNER_KEYS
from runner.spec.project import (
    display_path,
    missing_file_hint,
    missing_outside,
    outside_hint,
    resolve_inside,
    written_path,
)


def build_cases(file: SpecFile, needed: set[str], problems: list[Problem]) -> CaseSource | None:
    """The spec's cases, each row checked to give every variable in ``needed``."""
    value = file.data.get("cases")
    if value is None:
        return None
    doc = file.doc
    pos = doc.position(("cases",))
    if isinstance(value, list):
        source = CaseSource(doc.file_of(pos), inline=tuple(value))

        def row_problem(number: int | None, message: str, hint: str | None) -> Problem:
            where: PathKey = ("cases", number - 1) if number else ("cases",)
            return doc.problem(where, re.sub(r"\brow\b", "case", message), hint)

    elif isinstance(value, dict) and "run" in value:
        chained = _run_cases(file, value, problems)
        if chained is None:
            return None
        source = CaseSource(display_path(chained.folder), run=chained)

        def row_problem(number: int | None, message: str, hint: str | None) -> Problem:
            if number is None:
                message = f"the run {chained.reference} has no {_records_wanted(chained)}"
                hint = "run the spec it chains from first, or change the filters"
            elif "has no value for" in message:
                message = message.replace(
                    f"row {number}",
                    f"the record on line {number} of {source.display}/results.jsonl",
                )
                hint = (
                    f"a chained case gives the record's variables and {', '.join(RECORD_VARIABLES)}"
                )
            return doc.problem(("cases", "run"), message, hint, code="chained-run")

    elif isinstance(value, dict):
        pattern = _file_pattern(file, value["files"], problems)
        if pattern is None:
            return None
        source = CaseSource(f"files {pattern.pattern}", files=pattern)

        def row_problem(number: int | None, message: str, hint: str | None) -> Problem:
            if number is None:
                message = f"no file matches '{value['files']}'"
                folder = display_path(file.folder_of(("cases", "files")))
                hint = (
                    f"looked for {Path(folder, value['files']).as_posix()}, as the pattern is "
                    "relative to the folder of the spec file"
                )
            elif "the same id" in message:
                message = message.replace("row ", "file ").replace("same id", "same name")
                hint = "a file's name is its case id: rename one, or match one folder only"
            return doc.problem(("cases", "files"), message, hint)

    else:
        data_file = _data_file(file, str(value), problems)
        if data_file is None:
            return None
        source = CaseSource(display_path(data_file), file=data_file)

        def row_problem(number: int | None, message: str, hint: str | None) -> Problem:
            return Problem(source.display, message, number, None, hint)

    try:
        return check_cases(source, needed, row_problem)
    except SpecError as exc:
        problems.extend(exc.problems)
        return None


def _run_cases(file: SpecFile, value: dict[str, Any], problems: list[Problem]) -> RunCases | None:
    """The run a spec chains from, which must exist, be finished and stay inside the project."""
    reference = str(value["run"])
    base = file.folder_of(("cases",))
    if resolve_inside(file.root, base, reference) is None:
        problems.append(
            file.problem(
                ("cases", "run"),
                f"the run folder '{reference}' is outside the project folder {file.root}",
                outside_hint(file.root, "run folders", "in runs/ beside the specs"),
                code="chained-run",
            )
        )
        return None
    try:
        folder = resolve_run_folder(reference, base)
    except RunFolderError as exc:
        problems.append(file.problem(("cases", "run"), str(exc), _RUN_HINT, code="chained-run"))
        return None
    statuses = value.get("status", list(DEFAULT_STATUS))
    specs = value.get("spec", [])
    chained = RunCases(
        reference,
        folder,
        tuple([statuses] if isinstance(statuses, str) else statuses),
        tuple([specs] if isinstance(specs, str) else specs),
    )
    try:
        check_finished(chained)
    except RunFolderError as exc:
        problems.append(file.problem(("cases", "run"), str(exc), code="chained-run"))
        return None
    return chained


_RUN_HINT = (
    "the folder is relative to the spec file, e.g. ../runs/latest (the newest run) or "
    "../runs/latest~1 (the one before)"
)


def _records_wanted(chained: RunCases) -> str:
    what = f"records with status {' or '.join(chained.statuses)}"
    if chained.specs:
        what += f" of the spec {' or '.join(chained.specs)}"
    return what


def _file_pattern(file: SpecFile, pattern: str, problems: list[Problem]) -> FilePattern | None:
    """One case per file matching ``pattern``, which may not leave the spec's folder."""
    pattern = written_path(pattern)
    if Path(pattern).is_absolute() or ".." in Path(pattern).parts:
        problems.append(
            file.problem(
                ("cases", "files"),
                f"the pattern '{pattern}' may not leave the spec's folder",
                "give a pattern relative to the spec file, e.g. images/*.png",
            )
        )
        return None
    files = FilePattern(pattern, file.folder_of(("cases",)), file.root)
    reason = pattern_problem(pattern)
    if reason is None:
        try:
            matching_files(files)
        except SpecError as exc:
            first = exc.problems[0]
            problems.append(
                file.problem(
                    ("cases", "files"), first.message, first.hint, code="data-file-outside"
                )
            )
            return None
        except (ValueError, OSError) as exc:
            reason = str(exc)
    if reason is not None:
        problems.append(
            file.problem(
                ("cases", "files"),
                f"'{pattern}' is not a pattern this runner reads: {reason}",
                "use * for any name and ** for any folders, e.g. scans/**/*.jpg",
            )
        )
        return None
    return files


def _data_file(file: SpecFile, reference: str, problems: list[Problem]) -> Path | None:
    folder = file.folder_of(("cases",))
    target = resolve_inside(file.root, folder, reference)
    absent = missing_outside(folder, reference) if target is None else None
    if absent is not None:
        problems.append(
            file.problem(
                ("cases",),
                f"data file not found: {reference}",
                missing_file_hint(reference, absent),
            )
        )
    elif target is None:
        problems.append(
            file.problem(
                ("cases",),
                f"the data file '{reference}' is outside the project folder {file.root}",
                outside_hint(file.root, "data files", "in a data/ folder beside the spec"),
            )
        )
    elif target.suffix.lower() not in DATA_SUFFIXES:
        problems.append(
            file.problem(
                ("cases",),
                f"'{reference}' is not a data file this runner reads",
                "use .csv, .jsonl, .json, .yaml or .yml",
            )
        )
    elif not target.is_file():
        problems.append(
            file.problem(
                ("cases",),
                f"data file not found: {reference}",
                missing_file_hint(reference, target),
            )
        )
    else:
        return target
    return None


def build_matrix(file: SpecFile, problems: list[Problem]) -> dict[str, tuple[Any, ...]]:
    """The matrix, each key a request field and each value valid for that field."""
    matrix = file.data.get("matrix") or {}
    for key, values in matrix.items():
        if key in RUNNER_KEYS or key == "messages" or key not in spec_properties():
            problems.append(
                file.problem(
                    ("matrix", key),
                    f"the matrix cannot vary '{key}'",
                    "vary request fields such as model, temperature or top_p; "
                    "vary variables with 'cases'",
                    key=True,
                )
            )
            continue
        validator = field_validator(key)
        for i, value in enumerate(values):
            for error in validator.iter_errors(value):
                problems.append(
                    file.problem(("matrix", key, i), f"matrix {key}[{i}]: {error.message}")
                )
    return {key: tuple(values) for key, values in matrix.items()}
