"""Local images: every case's image files checked against the spec's provider's limits."""

from __future__ import annotations

from collections.abc import Iterable

from runner.check.context import SpecFile
from runner.errors import Problem
from runner.spec.images import image_problems
from runner.spec.objects import Spec


def check_images(file: SpecFile, spec: Spec) -> Iterable[Problem]:
    """Missing or unreadable images, and the provider's limits, case by case (see
    ``runner/images.py``). Skipped when the cases themselves could not be read: their
    problems are reported already."""
    if "cases" in file.data and spec.cases is None:
        return []
    return image_problems(spec)
