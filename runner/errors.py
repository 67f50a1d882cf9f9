"""Error types, one per kind of mistake a user can make.

Library code raises these; the CLI prints them as ``path:line:col: message`` and picks the exit
code. No other exception type is meant to reach a user.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Fix:
    """One safe edit of a YAML file that corrects a problem (``runner validate --fix``):
    rename the key at ``path`` to the last part of ``to``, move it to ``to``, set the value at
    ``path`` to ``value``, or add the key ``path`` (absent) with ``value``. ``old`` is the value
    at ``path`` when the problem was found: the edit is made only where it is still there."""

    kind: Literal["rename", "move", "set", "add"]
    path: tuple[str | int, ...]
    old: Any
    to: tuple[str | int, ...] = ()
    value: Any = None


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one file, at one place in it (line and column are 1-based).

    An ``error`` stops the command; a ``warning`` (a model about to be retired, a variable
    given that no template uses) is shown and the command goes on. ``code`` names the kind of
    problem (docs/problems.md lists them); ``fix``, when set, is the one safe correction
    ``runner validate --fix`` may apply.
    """

    path: str
    message: str
    line: int | None = None
    column: int | None = None
    hint: str | None = None
    severity: Severity = "error"
    code: str | None = None
    fix: Fix | None = field(default=None, compare=False, repr=False)

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


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 value``, ``3 values``: a count with its noun in the right number."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


def agree(count: int, one: str, many: str) -> str:
    """The word that agrees with ``count``: ``agree(n, "was", "were")``."""
    return one if count == 1 else many


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


class UntrustedEndpoint(ProviderError):
    """A key would go to a server the user did not choose: the command stops before sending
    anything (exit code 2). ``reasons`` holds one sentence per key and server."""

    def __init__(self, reasons: list[str]):
        self.reasons = reasons
        super().__init__("\n".join(reasons))


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived (``timeout``, a cancelled CI job, ``docker stop``): stop like Ctrl-C."""


def saved_counts(answered: int, failed: int) -> str:
    """``12 answers and 3 failed requests saved``: what a stopped run kept, answers and
    failures told apart (a failure is saved too, but it is no answer)."""
    text = plural(answered, "answer")
    if failed:
        text += f" and {plural(failed, 'failed request')}"
    return f"{text} saved"


class RunInterrupted(RunnerError):
    """The user interrupted a run (Ctrl-C, or SIGTERM); what was answered is saved (exit code
    130, or 143 after SIGTERM)."""

    def __init__(self, run_dir: str, answered: int, terminated: bool = False, failed: int = 0):
        self.run_dir = run_dir
        self.terminated = terminated
        what = "terminated (SIGTERM)" if terminated else "interrupted"
        super().__init__(
            f"{what}: {saved_counts(answered, failed)} in {run_dir}; finish the run with: "
            f"runner run --resume {run_dir}"
        )


class RunStopped(RunnerError):
    """A provider's limit asks for a longer wait than the run may wait; the run stopped
    cleanly and can be resumed after the reset (exit code 75)."""

    def __init__(self, run_dir: str, reason: str, answered: int, not_sent: int, failed: int = 0):
        self.run_dir = run_dir
        super().__init__(
            f"stopped: {reason}\n{saved_counts(answered, failed)} in {run_dir}, "
            f"{plural(not_sent, 'request')} "
            f"not sent; after the reset, finish the run with: runner run --resume {run_dir}"
        )


class RunRefused(RunnerError):
    """Every request of a model failed alike (a wrong key, a retired model): the run stopped
    sending that model's requests, which wait unsent for the fix (exit code 1)."""

    def __init__(
        self,
        run_dir: str,
        reasons: list[str],
        answered: int,
        not_sent: int,
        failed: int = 0,
        resumable: bool = True,
    ):
        self.run_dir = run_dir
        then = (
            f"once fixed, finish the run with: runner run --resume {run_dir}"
            if resumable
            else "change the spec and start a new run (a resumed run sends the same requests)"
        )
        super().__init__(
            "\n".join(reasons) + f"\n{saved_counts(answered, failed)} in {run_dir}, "
            f"{plural(not_sent, 'request')} not sent; {then}"
        )


class RunBusy(UsageError):
    """Another process is writing the run directory (a run has one writer at a time): exit 2."""
