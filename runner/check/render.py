"""Render every request of a spec the way ``runner render`` and ``runner run`` will, so that
whatever they would refuse is reported by ``runner validate`` first.

Rendered: the spec's default ``vars`` when it has no cases, else every case (inline or a data
file row), with the same sandbox and budget as a run, and the command line's variables when
``render``/``run`` validate (``runner validate`` has none).
"""

from __future__ import annotations

from runner.check.context import SpecFile
from runner.errors import Problem, RenderError
from runner.spec.cases import MAX_REPORTED_ROWS, Case, iter_cases
from runner.spec.objects import Spec
from runner.spec.render import render_request


def render_problems(file: SpecFile, spec: Spec) -> list[Problem]:
    """Why rendering one of the spec's requests would fail: at the template for the default
    variables, at the case (its item in the spec, or its data file line) for a case."""
    problems: list[Problem] = []
    for case in iter_cases(spec.cases):
        try:
            # Local images are checked by validate_images.py, from their headers only.
            render_request(spec, file.variables, case, images="placeholder")
        except RenderError as exc:
            problems.append(_at_case(file, spec, case, exc.problem))
            if spec.cases is None or len(problems) >= MAX_REPORTED_ROWS:
                break
    return problems


def _at_case(file: SpecFile, spec: Spec, case: Case, problem: Problem) -> Problem:
    if spec.cases is None or case.row is None:
        return problem
    where = f"{problem.path}:{problem.line}:{problem.column}"
    message = f"case {case.row} ('{case.id}') makes the template at {where} fail: "
    message += problem.message.removeprefix("template error: ")
    if spec.cases.inline is not None:
        return file.problem(("cases", case.row - 1), message, problem.hint)
    return Problem(spec.cases.display, message, case.row, None, problem.hint)
