"""Where each value of a JSON text starts (line and column), for pointing at a mistake inside a
schema file the way ``runner/load.py`` does for YAML.

``json.loads`` stays the parser of record; this scanner only maps paths such as
``("properties", "city", "type")`` to positions, and runs only when there is a problem to show.
"""

from __future__ import annotations

import bisect
import json.decoder
import re
from collections.abc import Callable

from runner.spec.document import PathKey

_SPACE = re.compile(r"[ \t\n\r]*")
# The standard library's own string scanner (not in the type stubs): the text and the index just
# after the opening quote in, the decoded string and the index after the closing quote out.
_scan_string: Callable[[str, int], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]
_LITERAL = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?|true|false|null")


def json_positions(text: str) -> dict[PathKey, tuple[int, int]]:
    """(line, column), both 1-based, of where every value in ``text`` starts, by its path.
    Empty if the text is not JSON."""
    scanner = _Scanner(text)
    try:
        scanner.value(scanner.skip(0), ())
    except (ValueError, IndexError):
        return {}
    return scanner.found


class _Scanner:
    def __init__(self, text: str):
        self.text = text
        self.starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self.found: dict[PathKey, tuple[int, int]] = {}

    def where(self, index: int) -> tuple[int, int]:
        line = bisect.bisect_right(self.starts, index)
        return line, index - self.starts[line - 1] + 1

    def skip(self, index: int) -> int:
        match = _SPACE.match(self.text, index)
        return match.end() if match else index

    def value(self, index: int, path: PathKey) -> int:
        """Scan the value starting at ``index``, recording where it and its parts start."""
        self.found.setdefault(path, self.where(index))
        char = self.text[index]
        if char == "{":
            return self.mapping(index + 1, path)
        if char == "[":
            return self.sequence(index + 1, path)
        if char == '"':
            return _scan_string(self.text, index + 1)[1]
        match = _LITERAL.match(self.text, index)
        if match is None:
            raise ValueError(f"not JSON at {index}")
        return match.end()

    def mapping(self, index: int, path: PathKey) -> int:
        index = self.skip(index)
        if self.text[index] == "}":
            return index + 1
        while True:
            key, index = _scan_string(self.text, index + 1)
            index = self.skip(index)
            if self.text[index] != ":":
                raise ValueError("expected ':'")
            index = self.skip(self.value(self.skip(index + 1), (*path, key)))
            if self.text[index] == "}":
                return index + 1
            if self.text[index] != ",":
                raise ValueError("expected ','")
            index = self.skip(index + 1)

    def sequence(self, index: int, path: PathKey) -> int:
        index = self.skip(index)
        if self.text[index] == "]":
            return index + 1
        number = 0
        while True:
            index = self.skip(self.value(index, (*path, number)))
            number += 1
            if self.text[index] == "]":
                return index + 1
            if self.text[index] != ",":
                raise ValueError("expected ','")
            index = self.skip(index + 1)
