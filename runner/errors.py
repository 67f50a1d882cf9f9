"""Error types, one per kind of mistake a user can make.

Library code raises these; the CLI prints them as ``path:line:col: message`` and picks the exit
code. No other exception type is meant to reach a user.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one file, at one place in it (line and column are 1-based).

    An ``error`` stops the command; a ``warning`` (a model about to be retired, a variable
    given that no template uses) is shown and the command goes on.
    """

    path: str
    message: str
    line: int | None = None
    column: int | None = None
    hint: str | None = None
    severity: Severity = "error"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def __str__(self) -> str:
        where = self.path
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        label = "warning: " if self.severity == "warning" else ""
        text = f"{where}: {label}{self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text


class RunnerWarning(UserWarning):
    """A problem that does not stop a command, handed from library code to whoever called it.

    Library code never prints: it calls ``warn(problem)``, which goes through Python's
    ``warnings`` module. The CLI prints each one to stderr; Python callers see them as they
    see any warning (``warnings.catch_warnings(record=True)`` collects them), with the
    ``Problem`` in ``.problem``.
    """

    def __init__(self, problem: Problem):
        self.problem = problem
        super().__init__(str(problem))


def warn(problem: Problem) -> None:
    """Hand a warning to the caller (see RunnerWarning)."""
    warnings.warn(RunnerWarning(problem), stacklevel=2)


class RunnerError(Exception):
    """Base of every error the runner reports to a user without a traceback."""


class SpecError(RunnerError):
    """One or more problems in spec files, template files or data files."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class UsageError(RunnerError):
    """The command line asked for something that cannot be done (exit code 2)."""


class RenderError(RunnerError):
    """A template could not be rendered with the variables given."""

    def __init__(self, problem: Problem):
        self.problem = problem
        super().__init__(str(problem))


class UnknownOption(UsageError, TypeError):
    """A keyword argument that is no option; still a TypeError, as Python reports one."""


class ProviderError(UsageError):
    """The provider configuration is unusable (e.g. the API key variable is not set): exit 2."""


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived (``timeout``, a cancelled CI job, ``docker stop``): stop like Ctrl-C."""


class RunInterrupted(RunnerError):
    """The user interrupted a run (Ctrl-C, or SIGTERM); what was answered is saved (exit code
    130, or 143 after SIGTERM)."""

    def __init__(self, run_dir: str, saved: int, terminated: bool = False):
        self.run_dir = run_dir
        self.terminated = terminated
        what = "terminated (SIGTERM)" if terminated else "interrupted"
        super().__init__(
            f"{what}: {saved} answer(s) saved in {run_dir}; finish the run with: "
            f"runner run --resume {run_dir}"
        )


class RunStopped(RunnerError):
    """A provider's limit asks for a longer wait than the run may wait; the run stopped
    cleanly and can be resumed after the reset (exit code 75)."""

    def __init__(self, run_dir: str, reason: str, saved: int, not_sent: int):
        self.run_dir = run_dir
        super().__init__(
            f"stopped: {reason}\n{saved} answer(s) saved in {run_dir}, {not_sent} request(s) "
            f"not sent; after the reset, finish the run with: runner run --resume {run_dir}"
        )
