"""Score one record against its spec's expectations, the same way during a run and after it.

``runner run`` scores each answer as its record is made; ``runner score`` (runner/rescore.py)
scores the saved answers of a finished run again with the same function, sending nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runner.grade.expect import evaluate
from runner.spec.cases import NO_CASE, Case
from runner.spec.expectations import parse_checks
from runner.spec.objects import Spec
from runner.spec.project import find_project_root
from runner.spec.render import template_environment


def score_record(
    spec: Spec, record: Mapping[str, Any], variables: Mapping[str, Any], case: Case = NO_CASE
) -> dict[str, Any] | None:
    """``record["expectations"]`` for ``record``: the spec's checks, then the case's own; None
    when there are none."""
    checks = spec.expect + parse_checks(case.expect) if case.expect else spec.expect
    if not checks:
        return None
    env = template_environment(find_project_root(spec.path))
    return evaluate(checks, record, variables, env)
