"""Problems as CI systems and editors read them: plain ``file:line:col: message (fix) [code]``
lines, GitHub Actions annotations (the code as their title), or JSON (with ``code``).

GitHub's workflow command is ``::error file=F,line=L,col=C::MESSAGE``; in the message ``%``,
CR and LF are written ``%25``, ``%0D`` and ``%0A``, and property values (the file) also escape
``:`` and ``,`` as ``%3A`` and ``%2C`` (the escaping of GitHub's own actions/toolkit).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Literal

from runner.check.codes import code_of
from runner.errors import Problem

Format = Literal["text", "github", "json"]
FORMATS: tuple[Format, ...] = ("text", "github", "json")


def format_problems(problems: Iterable[Problem], kind: Format, files: int = 0) -> str:
    """The problems as one text in ``kind``; for json, with the number of files checked."""
    if kind == "json":
        listed = [problem_json(p) for p in problems]
        valid = not any(p["severity"] == "error" for p in listed)
        return json.dumps({"files": files, "valid": valid, "problems": listed}, indent=2)
    if kind == "github":
        return "\n".join(github_annotation(p) for p in problems)
    return "\n".join(problem_text(p) for p in problems)


def problem_text(problem: Problem) -> str:
    """``file:line:col: message (fix) [code]``, the code last as mypy and ruff show theirs."""
    return f"{problem} [{code_of(problem)}]"


def problem_json(problem: Problem) -> dict[str, object]:
    return {
        "file": problem.path,
        "line": problem.line,
        "column": problem.column,
        "code": code_of(problem),
        "message": problem.message,
        "hint": problem.hint,
        "severity": problem.severity,
        "fixable": problem.fix is not None,
    }


def github_annotation(problem: Problem) -> str:
    """One ``::error ...::`` (or ``::warning ...::``) line GitHub Actions shows on the file in a
    pull request."""
    properties = [f"file={_escape_property(problem.path)}"]
    if problem.line is not None:
        properties.append(f"line={problem.line}")
        if problem.column is not None:
            properties.append(f"col={problem.column}")
    properties.append(f"title={_escape_property(code_of(problem))}")
    message = problem.message + (f" ({problem.hint})" if problem.hint else "")
    return f"::{problem.severity} {','.join(properties)}::{_escape_data(message)}"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")
