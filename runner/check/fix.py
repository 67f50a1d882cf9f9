"""``runner validate --fix``: apply the safe fixes problems carry, keeping the file as written.

A fix is one unambiguous edit of a YAML file: rename a key, move a key to where it belongs, or
set a value to its corrected form (``Fix`` in ``runner/errors.py``). Files are edited with
ruamel.yaml's round-trip mode, which keeps comments, key order, quoting and blank lines (PyYAML,
which the rest of runner reads with, drops comments). A file is changed only when:

- only the lines of the fixes change: where ruamel.yaml would write other lines differently
  (``[a,b]`` as ``[a, b]``, aligned values), those keep the user's text, and a fix that would
  touch such a line leaves the file alone;
- every fix finds at its path the value the check saw (a fix never lands on the wrong item);
- the edited text, read back by runner's own loader, holds exactly the old data plus the fixes.

Anything else is left alone, and the problem stays reported.
"""

from __future__ import annotations

import copy
import difflib
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.util import load_yaml_guess_indent

from runner.check.validate import Validation, validate_paths
from runner.errors import Fix, Problem, SpecError
from runner.spec.load import parse_yaml

_MISSING = object()


@dataclass(frozen=True)
class FileFix:
    """What fixing one file did (or would do, with --diff): its text before and after, the
    problems fixed, and why it was left alone when it was."""

    path: Path
    display: str
    before: str
    after: str
    fixed: tuple[Problem, ...]
    refused: str | None = None

    @property
    def changed(self) -> bool:
        return self.refused is None and self.after != self.before

    def diff(self) -> str:
        """The change as a unified diff (``a/FILE`` and ``b/FILE``), empty when none."""
        if not self.changed:
            return ""
        lines = difflib.unified_diff(
            self.before.splitlines(keepends=True),
            self.after.splitlines(keepends=True),
            f"a/{self.display}",
            f"b/{self.display}",
        )
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


@dataclass(frozen=True)
class FixOutcome:
    """What ``fix_paths`` did: each file it fixed (or would fix) or left alone, and the
    validation of the files as they are afterwards."""

    files: tuple[FileFix, ...]
    validation: Validation

    @property
    def fixed(self) -> int:
        return sum(len(f.fixed) for f in self.files if f.changed)


def fix_paths(paths: Iterable[Path], *, write: bool = True) -> FixOutcome:
    """Validate the specs under ``paths`` and apply every safe fix (``write=False``: only
    work out the changes); the validation returned is of the files as they now are."""
    paths = list(paths)
    before = validate_paths(paths, None)
    plans = plan_fixes(before.problems)
    if not write or not any(plan.changed for plan in plans):
        return FixOutcome(tuple(plans), before)
    write_fixes(plans)
    return FixOutcome(tuple(plans), validate_paths(paths, None))


def plan_fixes(problems: Iterable[Problem]) -> list[FileFix]:
    """Each file with a fixable problem, fixed in memory (nothing is written)."""
    by_file: dict[str, list[Problem]] = {}
    for problem in problems:
        if problem.fix is not None:
            by_file.setdefault(problem.path, []).append(problem)
    return [_fix_file(Path(display), display, found) for display, found in by_file.items()]


def write_fixes(plans: Iterable[FileFix]) -> None:
    """Write every changed file of ``plans``."""
    for plan in plans:
        if plan.changed:
            plan.path.write_text(plan.after, encoding="utf-8")


def _fix_file(path: Path, display: str, problems: list[Problem]) -> FileFix:
    try:
        before = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return FileFix(path, display, "", "", (), f"cannot read it: {exc}")
    try:
        yaml, tree = _round_trip_loader(before)
    except YAMLError as exc:
        return FileFix(path, display, before, before, (), f"ruamel.yaml cannot read it: {exc}")
    baseline = _dump(yaml, tree)  # the file as ruamel.yaml writes it with no edit
    try:
        expected = parse_yaml(before, path, display).data
    except SpecError:
        return FileFix(path, display, before, before, (), "it is not valid YAML")
    applied: list[Problem] = []
    touched: set[tuple[str | int, ...]] = set()
    for problem in problems:
        fix = problem.fix
        assert fix is not None
        if fix.path in touched or fix.path[:-1] in touched:
            continue  # one fix per place: a second would apply to what the first changed
        found = _value_at(expected, fix.path)
        if (found is not _MISSING) if fix.kind == "add" else (found != fix.old):
            continue  # the file changed since the problem was found
        try:
            _apply(tree, fix, rich=True)
            _apply(expected, fix, rich=False)
        except (KeyError, IndexError, TypeError):
            return FileFix(path, display, before, before, (), "a fix does not fit its place")
        touched.add(fix.path)
        applied.append(problem)
    after = _only_the_edits(before, baseline, _dump(yaml, tree))
    if after is None:
        return FileFix(
            path,
            display,
            before,
            before,
            (),
            "a fix touches a line ruamel.yaml would rewrite (fix it by hand)",
        )
    try:
        data = parse_yaml(after, path, display).data
    except SpecError:
        return FileFix(path, display, before, before, (), "the fixed text would not be valid")
    if _canonical(data) != _canonical(expected):
        return FileFix(path, display, before, before, (), "the fixed text reads differently")
    return FileFix(path, display, before, after, tuple(applied))


def _only_the_edits(original: str, baseline: str, edited: str) -> str | None:
    """``original`` with the changes from ``baseline`` to ``edited`` (the fixes, as ruamel.yaml
    writes them) and no other: lines ruamel.yaml would write differently anyway keep the
    user's text. None when a change falls on such a line."""
    source, base, new = (text.splitlines(keepends=True) for text in (original, baseline, edited))
    kept = difflib.SequenceMatcher(None, base, source, autojunk=False).get_opcodes()
    same = {
        b: o
        for tag, i1, i2, j1, _ in kept
        if tag == "equal"
        for b, o in zip(range(i1, i2), range(j1, j1 + i2 - i1), strict=True)
    }
    edits = {}
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(
        None, base, new, autojunk=False
    ).get_opcodes():
        if tag == "equal":
            continue
        touched = range(i1 - 1, i2 + 1) if i1 == i2 else range(i1, i2)
        if any(b not in same for b in touched if 0 <= b < len(base)):
            return None
        edits[i1] = (i2, new[j1:j2])
    out: list[str] = []
    for tag, i1, i2, j1, j2 in kept:
        if tag != "equal":
            out += source[j1:j2]  # written differently by ruamel.yaml: the user's lines
            continue
        b = i1
        while b < i2:
            if b in edits:
                end, lines = edits.pop(b)
                if end > i2:
                    return None  # the change spans lines ruamel.yaml writes differently
                out += lines
                if end > b:
                    b = end
                    continue
            out.append(source[same[b]])
            b += 1
    if edits:  # an insertion at the very end
        for _, lines in edits.values():
            out += lines
    return "".join(out)


def _round_trip_loader(text: str) -> tuple[YAML, Any]:
    """A round-trip loader set to the file's own indentation (``messages:`` then ``  - role``
    is a sequence indented 4 with its dash at 2), and the file loaded with it."""
    _, indent, dash = load_yaml_guess_indent(text)
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a long line
    indent, dash = indent or 2, dash or 0
    yaml.indent(mapping=indent - dash if dash else indent, sequence=indent, offset=dash)
    return yaml, yaml.load(text)


def _dump(yaml: YAML, tree: Any) -> str:
    out = io.StringIO()
    yaml.dump(tree, out)
    return out.getvalue()


def _canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, default=str)


def _value_at(data: Any, path: tuple[str | int, ...]) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return data


def _apply(root: Any, fix: Fix, *, rich: bool) -> None:
    parent = _value_at(root, fix.path[:-1])
    key = fix.path[-1]
    if fix.kind == "rename":
        _rename(parent, key, fix.to[-1], rich)
    elif fix.kind == "add":
        if key in parent:
            raise KeyError(key)
        parent[key] = _styled(None, fix.value) if rich else copy.deepcopy(fix.value)
    elif fix.kind == "set":
        parent[key] = _styled(parent[key], fix.value) if rich else copy.deepcopy(fix.value)
    elif fix.kind == "move":
        value = parent[key]
        comment = parent.ca.items.pop(key, None) if rich else None
        del parent[key]
        _place(root, fix.to, value, comment, rich)
    else:
        raise TypeError(fix.kind)


def _rename(mapping: Any, old: str | int, new: str | int, rich: bool) -> None:
    if new in mapping:
        raise KeyError(new)
    position = list(mapping).index(old)
    value = mapping[old]
    if rich:
        comment = mapping.ca.items.pop(old, None)
        del mapping[old]
        mapping.insert(position, new, value)
        if comment is not None:
            mapping.ca.items[new] = comment
        return
    items = list(mapping.items())
    items[position] = (new, value)
    mapping.clear()
    mapping.update(items)


def _place(root: Any, to: tuple[str | int, ...], value: Any, comment: Any, rich: bool) -> None:
    """Put ``value`` at ``to``, making the mappings on the way that do not exist yet."""
    node = root
    for part in to[:-1]:
        if isinstance(node, list) and isinstance(part, int):
            node = node[part]
            continue
        if not isinstance(node, dict):
            raise TypeError(f"{part} is not in a mapping")
        child = node.get(part, _MISSING)
        if child is _MISSING:
            child = CommentedMap() if rich else {}
            node[part] = child
        node = child
    if not isinstance(node, dict):
        raise TypeError(f"{to[-2]} is not a mapping")
    if to[-1] in node:
        raise KeyError(to[-1])
    node[to[-1]] = value
    if isinstance(node, CommentedMap) and comment is not None:
        node.ca.items[to[-1]] = comment


def _styled(old: Any, new: Any) -> Any:
    """``new`` written the way ``old`` was: the same quotes for text; lists in flow style."""
    if isinstance(new, str) and isinstance(old, str) and type(old) is not str:
        return type(old)(new)
    if isinstance(new, list):
        seq = CommentedSeq(new)
        seq.fa.set_flow_style()
        return seq
    if isinstance(new, dict):
        mapping = CommentedMap()
        mapping.update(new)
        return mapping
    return new
