"""A parsed YAML file with the line and column of every value: what loading gives every later
stage, so a mistake can be shown where it was written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.errors import Fix, Problem

PathKey = tuple[str | int, ...]


@dataclass(frozen=True)
class Position:
    """Where a value (and, for mapping entries, its key) starts in the file; 1-based."""

    line: int
    column: int
    key_line: int | None = None
    key_column: int | None = None
    block: bool = False
    file: str | None = None  # set only for values merged in from another file (a base spec)


@dataclass
class Document:
    """A parsed YAML file: its data and the position of every value in it."""

    path: Path
    data: Any
    positions: dict[PathKey, Position] = field(default_factory=dict)
    text: str = ""
    display: str = ""
    # Other files whose values were merged into this document: display name -> (path, text).
    others: dict[str, tuple[Path, str]] = field(default_factory=dict)

    def position(self, path: PathKey, *, key: bool = False) -> Position:
        """The position of ``path`` or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            found = self.positions.get(tuple(path[:end]))
            if found is not None:
                if key and end == len(path) and found.key_line is not None:
                    return Position(found.key_line, found.key_column or 1, file=found.file)
                return found
        return Position(1, 1)

    def problem(
        self,
        path: PathKey,
        message: str,
        hint: str | None = None,
        *,
        key: bool = False,
        code: str | None = None,
        fix: Fix | None = None,
    ) -> Problem:
        """A Problem located at ``path`` in this document (with its code and safe fix)."""
        pos = self.position(path, key=key)
        return Problem(self.file_of(pos), message, pos.line, pos.column, hint, code=code, fix=fix)

    def file_of(self, pos: Position) -> str:
        """The display name of the file a position is in."""
        return pos.file or self.display or str(self.path)

    def source_of(self, pos: Position) -> tuple[Path, str]:
        """The path and text of the file a position is in."""
        if pos.file is not None and pos.file in self.others:
            return self.others[pos.file]
        return self.path, self.text
