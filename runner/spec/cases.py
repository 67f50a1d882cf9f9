"""Cases and matrix: turn one spec into many requests.

A spec's ``cases`` are sets of template variables, listed inline, read from a data file next
to the spec (CSV, JSONL, JSON or YAML), or one per file matching a pattern (images, say); a
``matrix`` sweeps request fields (model, temperature, ...) over lists of values. Every case x
combination is one request, with a record id that stays the same when rows are added or
reordered: a case's id is its ``id`` column when it has one (a file's name, for files),
otherwise a hash of its content.

Data files are read lazily, one row at a time, so a large CSV or JSONL file runs in bounded
memory. JSON and YAML data files are read whole (they cannot be streamed), within the loader's
size limit.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import os
import random
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from runner.errors import Problem, SpecError, plural
from runner.spec.chain import RESULTS, RunCases, run_rows
from runner.spec.load import load_yaml, read_text
from runner.spec.project import display_path

DATA_SUFFIXES = (".csv", ".jsonl", ".json", ".yaml", ".yml")
ID_COLUMN = "id"
CASE_EXPECT = "expect"  # an inline case's own checks, added to the spec's
MAX_REPORTED_ROWS = 5


@dataclass(frozen=True)
class Case:
    """One set of template variables, with a stable id and where it came from.

    ``expect`` holds the checks an inline case adds to its spec's ``expect:`` (as written in
    YAML; see runner/expect.py); they are not variables and not part of the case's id.
    """

    id: str
    vars: Mapping[str, Any]
    row: int | None = None
    expect: tuple[Any, ...] = ()


@dataclass(frozen=True)
class FilePattern:
    """Cases from files: one per file matching ``pattern`` under ``folder`` (the spec's) that
    stays inside the project folder ``root``."""

    pattern: str
    folder: Path
    root: Path


@dataclass(frozen=True)
class CaseSource:
    """Where a spec's cases come from: a list in the spec, a data file, or files."""

    display: str
    inline: tuple[Mapping[str, Any], ...] | None = None
    file: Path | None = None
    count: int = 0
    sha256: str | None = None
    files: FilePattern | None = None
    run: RunCases | None = None  # the records of an earlier run (see runner/spec/chain.py)


@dataclass(frozen=True)
class Combination:
    """One point of a matrix: request fields laid over the spec's, and a label naming it."""

    label: str
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Selection:
    """Which cases to run: by id, the first N, or a seeded random sample of N (per spec)."""

    case_ids: tuple[str, ...] = ()
    limit: int | None = None
    sample: int | None = None
    seed: int = 0


NO_CASE = Case("", {})
NO_COMBINATION = Combination("")


# ---- ids


def case_id(row: Mapping[str, Any]) -> str:
    """The row's ``id`` value, or a hash of its content (independent of key order)."""
    given = row.get(ID_COLUMN)
    if given is not None and str(given).strip():
        return str(given).strip()
    if isinstance(row.get(CASE_EXPECT), list):  # fixing a case's checks keeps its id
        row = {k: v for k, v in row.items() if k != CASE_EXPECT}
    text = json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def record_id(spec_name: str, case: Case, combination: Combination) -> str:
    """``name``, ``name/case``, ``name/combination`` or ``name/case/combination``."""
    return "/".join(part for part in (spec_name, case.id, combination.label) if part)


# ---- reading rows


def read_rows(source: CaseSource) -> Iterator[tuple[int, Any]]:
    """(line or item number, row) for every case; raises SpecError for unreadable files."""
    if source.inline is not None:
        yield from enumerate(source.inline, start=1)
        return
    if source.files is not None:
        yield from enumerate(file_rows(source.files), start=1)
        return
    if source.run is not None:
        yield from run_rows(source.run)
        return
    assert source.file is not None
    suffix = source.file.suffix.lower()
    if suffix == ".csv":
        yield from _csv_rows(source.file, source.display)
    elif suffix == ".jsonl":
        yield from _jsonl_rows(source.file, source.display)
    else:
        yield from enumerate(_document_rows(source.file, source.display), start=1)


def pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` is not a file pattern this runner reads, or None. The rules are ours, the
    same on every Python: 3.13's glob reads ``***`` as ``*`` where older ones refuse it."""
    parts = [part for part in pattern.split("/") if part not in ("", ".")]
    if not parts:
        return "it names no file"
    if any("**" in part and part != "**" for part in parts):
        return "'**' can only be a whole folder name, as in scans/**/*.png"
    return None


def _glob_pattern(pattern: str) -> str:
    """``pattern`` as every Python's glob reads it alike: a trailing ``**`` matches folders only
    before 3.13 and files too from 3.13 on, so it is spelled ``**/*`` (files are what we keep)."""
    return pattern + "/*" if pattern.rstrip("/").rsplit("/", 1)[-1] == "**" else pattern


def file_rows(files: FilePattern) -> Iterator[dict[str, str]]:
    """One row per matching file, in path order: its name is the case id; ``path`` (relative
    to the spec's folder), ``name`` and ``stem`` are its variables."""
    for match in matching_files(files):
        relative = match.relative_to(files.folder).as_posix()
        yield {ID_COLUMN: match.name, "path": relative, "name": match.name, "stem": match.stem}


def matching_files(files: FilePattern) -> list[Path]:
    """The files ``files.pattern`` matches under ``files.folder`` (``*`` any name, ``**`` any
    folders), sorted, never going outside the project: a link (to a folder or a file) that
    leads out of it is a SpecError naming the link, as is a folder that cannot be read.
    Each folder is entered once, so a link back to a parent does not loop."""
    written = _glob_pattern(files.pattern).replace("\\", "/").split("/")
    parts = tuple(part for part in written if part not in ("", "."))
    found: set[Path] = set()
    _match(files.folder, parts, files, found, set())
    return sorted(path for path in found if path.is_file())


def _match(
    folder: Path, parts: tuple[str, ...], files: FilePattern, found: set[Path], entered: set[Any]
) -> None:
    if not parts:
        return
    head, rest = parts[0], parts[1:]
    if head == "**":
        key = (_identity(folder), parts)
        if key in entered:  # a link back to a folder already walked
            return
        entered.add(key)
        _match(folder, rest, files, found, entered)
        for entry in _entries(folder):
            if entry.is_dir() and _inside(folder / entry.name, files):
                _match(folder / entry.name, parts, files, found, entered)
        return
    for entry in _entries(folder):
        if not fnmatchcase(entry.name, head):
            continue
        path = folder / entry.name
        if not _inside(path, files):
            continue
        if rest:
            if entry.is_dir():
                _match(path, rest, files, found, entered)
        else:
            found.add(path)


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as listing:
            return sorted(listing, key=lambda entry: entry.name)
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise SpecError(
            [Problem(str(folder), f"cannot read the folder {display_path(folder)}: {exc.strerror}")]
        ) from None


def _inside(path: Path, files: FilePattern) -> bool:
    """True for a path inside the project; a link leading out is a SpecError (a broken link,
    False: it is no file)."""
    if not path.is_symlink():
        return True
    try:
        target = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return False
    if target == files.root or files.root in target.parents:
        return True
    raise SpecError(
        [
            Problem(
                str(path),
                f"{Path(display_path(path.parent)) / path.name} is a link out of the project, "
                f"to {target}: cases are "
                f"read only from inside the project folder {files.root}",
                hint="copy the files into the project, or give a pattern that does not go "
                "through the link",
            )
        ]
    )


def _identity(path: Path) -> tuple[int, int] | Path:
    try:
        stat = path.stat()
    except OSError:
        return path
    return (stat.st_dev, stat.st_ino)


def _csv_rows(path: Path, display: str) -> Iterator[tuple[int, Any]]:
    with _open_text(path, display) as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            return
        names = [name.strip() for name in header]
        _check_header(names, display)
        for values in reader:
            if not values or values == [""]:
                continue
            if len(values) != len(names):
                yield (
                    reader.line_num,
                    _BadRow(
                        f"has {plural(len(values), 'value')} but the header has "
                        f"{plural(len(names), 'column')}"
                    ),
                )
                continue
            # A line break inside a quoted value is "\n" whether the file was saved on
            # Windows or not, so the case (and its id) is the same.
            values = [v.replace("\r\n", "\n") if "\r" in v else v for v in values]
            yield reader.line_num, dict(zip(names, values, strict=True))


def _check_header(names: list[str], display: str) -> None:
    problems = [
        Problem(display, f"column {i} of the header has no name", 1, None, "name every column")
        for i, name in enumerate(names, start=1)
        if not name
    ]
    if len(names) == 1 and (sep := next((c for c in ";\t|" if c in names[0]), None)):
        shown = "a tab" if sep == "\t" else f"'{sep}'"
        problems.append(
            Problem(
                display,
                f"the header is one column, {names[0]!r}: its values are separated by {shown}",
                1,
                None,
                "separate the values with commas (in a spreadsheet: save as CSV, comma delimited)",
            )
        )
    dupes = sorted({n for n in names if n and names.count(n) > 1})
    problems += [Problem(display, f"column '{n}' appears twice in the header", 1) for n in dupes]
    if problems:
        raise SpecError(problems)


def _jsonl_rows(path: Path, display: str) -> Iterator[tuple[int, Any]]:
    with _open_text(path, display) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, _BadRow(f"is not valid JSON: {exc.msg} (column {exc.colno})")


def _document_rows(path: Path, display: str) -> list[Any]:
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(read_text(path, display))
        except json.JSONDecodeError as exc:
            raise SpecError(
                [Problem(display, f"is not valid JSON: {exc.msg}", exc.lineno, exc.colno)]
            ) from None
    else:
        data = load_yaml(path, display).data
    if not isinstance(data, list):
        raise SpecError(
            [
                Problem(
                    display, "a data file must hold a list of cases (mappings of variables)", 1, 1
                )
            ]
        )
    return data


def _open_text(path: Path, display: str) -> Any:
    try:
        return open(path, encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise SpecError([Problem(display, "data file not found")]) from None
    except OSError as exc:
        raise SpecError([Problem(display, f"cannot read data file: {exc.strerror}")]) from None


class _BadRow:
    """A row that could not be read; checked and reported by ``check_cases``."""

    def __init__(self, reason: str):
        self.reason = reason


# ---- checking (runner validate)


def check_cases(source: CaseSource, needed: Iterable[str], row_problem: Any) -> CaseSource:
    """Read every row: count them, hash the file, and report what is wrong, by row.

    ``needed`` are the template variables that the spec's own ``vars`` do not supply.
    ``row_problem(number, message, hint)`` makes the Problem for a row (inline cases point
    into the spec, data files at the row's line). Raises SpecError with every problem found.
    Memory stays the same however many rows there are (see ``_IdFilter``).
    """
    needed = sorted(needed)
    problems: list[Problem] = []
    ids = _IdFilter()
    count = 0
    try:
        for number, row in read_rows(source):
            count += 1
            problem = _row_problem(row, needed, number, row_problem)
            if problem is None:
                ids.add(case_id(row))
            elif len(problems) < MAX_REPORTED_ROWS:
                problems.append(problem)
        if ids.suspects:
            problems += _repeated_ids(source, ids.suspects, row_problem)
    except (UnicodeDecodeError, csv.Error) as exc:
        problems.append(Problem(source.display, f"cannot read the data file: {exc}"))
    if count == 0 and not problems:
        problems.append(row_problem(None, "has no cases", "add at least one row of variables"))
    if problems:
        problems.sort(key=lambda p: p.line or 0)
        raise SpecError(problems[:MAX_REPORTED_ROWS])
    digest: str | None
    if source.files is not None:
        digest = _listing_hash(source.files)
    elif source.run is not None:
        digest = _file_hash(source.run.folder / RESULTS)
    else:
        digest = _file_hash(source.file)
    return CaseSource(
        source.display, source.inline, source.file, count, digest, source.files, source.run
    )


def _row_problem(row: Any, needed: list[str], number: int, row_problem: Any) -> Problem | None:
    if isinstance(row, _BadRow):
        return row_problem(number, f"row {number} {row.reason}", None)
    if not isinstance(row, dict):
        return row_problem(
            number, f"row {number} is not a mapping of variable names to values", None
        )
    missing = [name for name in needed if name not in row]
    if missing:
        return row_problem(
            number,
            f"row {number} has no value for {', '.join(repr(m) for m in missing)}, "
            "which the templates use",
            "add the column (or key), or give a default under 'vars:' in the spec",
        )
    return None


class _IdFilter:
    """Remembers case ids in fixed memory (a Bloom filter of 1 MiB) to find repeated ones.

    An id the filter may have seen before is a suspect; a second pass over the rows, keeping
    only the suspects, finds the real repeats. With 100,000 ids a false suspect is rare (about
    one in 170,000), and even a million rows keep the suspects to a few thousand.
    """

    BITS = 8 * 1024 * 1024
    HASHES = 4

    def __init__(self) -> None:
        self._bits = bytearray(self.BITS // 8)
        self.suspects: set[str] = set()

    def add(self, identity: str) -> None:
        digest = hashlib.blake2b(identity.encode("utf-8"), digest_size=4 * self.HASHES).digest()
        seen = True
        for i in range(self.HASHES):
            bit = int.from_bytes(digest[4 * i : 4 * i + 4], "little") % self.BITS
            byte, mask = bit >> 3, 1 << (bit & 7)
            if not self._bits[byte] & mask:
                seen = False
                self._bits[byte] |= mask
        if seen:
            self.suspects.add(identity)


def _repeated_ids(source: CaseSource, suspects: set[str], row_problem: Any) -> list[Problem]:
    first: dict[str, int] = {}
    problems: list[Problem] = []
    for number, row in read_rows(source):
        if not isinstance(row, dict) or (identity := case_id(row)) not in suspects:
            continue
        earlier = first.setdefault(identity, number)
        if earlier != number and len(problems) < MAX_REPORTED_ROWS:
            what = "id" if row.get(ID_COLUMN) not in (None, "") else "content"
            problems.append(
                row_problem(
                    number,
                    f"row {number} has the same {what} as row {earlier} (case id '{identity}')",
                    "give every case its own 'id', or remove the repeated row",
                )
            )
    return problems


def _listing_hash(files: FilePattern) -> str:
    """A hash of the matching files' paths, sizes and change times: it changes when a file is
    added, removed or edited, without reading the files (a folder of scans can be large)."""
    digest = hashlib.sha256()
    for row in file_rows(files):
        stat = (files.folder / row["path"]).stat()
        digest.update(f"{row['path']}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _file_hash(path: Path | None) -> str | None:
    if path is None:
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---- expanding (runner run / render)


def iter_cases(source: CaseSource | None, selection: Selection | None = None) -> Iterator[Case]:
    """The selected cases of a spec, read lazily; one empty case when the spec has none."""
    if source is None:
        yield NO_CASE
        return
    selection = selection or Selection()
    inline = source.inline is not None
    cases = (
        _case(row, number, inline) for number, row in read_rows(source) if isinstance(row, dict)
    )
    if selection.case_ids:
        wanted = set(selection.case_ids)
        cases = (case for case in cases if case.id in wanted)
    if selection.sample is not None:
        yield from _sample(cases, selection.sample, selection.seed)
    elif selection.limit is not None:
        yield from itertools.islice(cases, selection.limit)
    else:
        yield from cases


def _case(row: dict[str, Any], number: int, inline: bool) -> Case:
    checks = row.get(CASE_EXPECT) if inline else None
    if not isinstance(checks, list):
        return Case(case_id(row), row, number)
    variables = {k: v for k, v in row.items() if k != CASE_EXPECT}
    return Case(case_id(row), variables, number, tuple(checks))


def _sample(cases: Iterator[Case], size: int, seed: int) -> list[Case]:
    """A seeded reservoir sample, in file order: memory grows with ``size``, not the file."""
    rng = random.Random(seed)
    reservoir: list[tuple[int, Case]] = []
    for index, case in enumerate(cases):
        if index < size:
            reservoir.append((index, case))
        else:
            slot = rng.randrange(index + 1)
            if slot < size:
                reservoir[slot] = (index, case)
    return [case for _, case in sorted(reservoir, key=lambda item: item[0])]


def combinations(matrix: Mapping[str, tuple[Any, ...]]) -> list[Combination]:
    """Every combination of a matrix's values, labelled ``model=a,temperature=0.5``."""
    if not matrix:
        return [NO_COMBINATION]
    keys = list(matrix)
    return [
        Combination(
            ",".join(f"{k}={_label(v)}" for k, v in zip(keys, values, strict=True)),
            dict(zip(keys, values, strict=True)),
        )
        for values in itertools.product(*(matrix[k] for k in keys))
    ]


def _label(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def expand(
    source: CaseSource | None,
    matrix: Mapping[str, tuple[Any, ...]],
    selection: Selection | None = None,
) -> Iterator[tuple[Case, Combination]]:
    """Every selected case with every matrix combination, in case order, read lazily."""
    combos = combinations(matrix)
    for case in iter_cases(source, selection):
        for combination in combos:
            yield case, combination


def unknown_case_ids(sources: Iterable[CaseSource | None], case_ids: Iterable[str]) -> list[str]:
    """The ids of ``case_ids`` that name no case of any source (read lazily, stopping once
    every id is found), so a mistyped --case is reported instead of running nothing."""
    missing = dict.fromkeys(case_ids)
    for source in sources:
        if source is None or not missing:
            continue
        for case in iter_cases(source, Selection(tuple(missing))):
            missing.pop(case.id, None)
    return list(missing)


def count_requests(
    source: CaseSource | None,
    matrix: Mapping[str, tuple[Any, ...]],
    selection: Selection | None = None,
) -> int:
    """How many requests ``expand`` gives (at most, for a selection by id), without reading."""
    cases = source.count if source is not None else 1
    if source is not None and selection is not None:
        if selection.case_ids:
            cases = min(cases, len(set(selection.case_ids)))
        for cap in (selection.limit, selection.sample):
            if cap is not None:
                cases = min(cases, cap)
    combos = 1
    for values in matrix.values():
        combos *= len(values)
    return cases * combos
