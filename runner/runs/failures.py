"""The failures of a run grouped by cause, for the end-of-run summary.

Fifteen requests refused for the same reason are one line with a count and one example, not
fifteen lines: the cause is the record's error sentence on one line, or the first reason its
output (or one of its tool calls) is invalid. The spec's path is taken out to group (the same
mistake in several specs is one cause) and put back, the example's, to show.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runner.errors import plural
from runner.grade.output import output_errors

SHOWN = 10  # causes listed in the summary; the rest are counted in one line
SPEC = "<spec>"  # stands for the spec's path in the cause a group is keyed by


@dataclass
class FailureGroup:
    key: str  # the cause with the spec's path taken out
    count: int
    example_record: str
    example_spec: str

    @property
    def cause(self) -> str:
        """The cause as shown: the example's own spec path put back."""
        return self.key.replace(SPEC, self.example_spec)


@dataclass
class FailureGroups:
    """Causes in the order they first happened, each with a count and its first example."""

    groups: dict[str, FailureGroup] = field(default_factory=dict)

    def add(self, record: dict[str, Any]) -> None:
        if record["status"] == "ok":
            return
        spec = record["spec"]["path"]
        cause = _cause(record).replace(spec, SPEC)
        group = self.groups.get(cause)
        if group is None:
            self.groups[cause] = FailureGroup(cause, 1, record["id"], spec)
        else:
            group.count += 1

    def describe(self) -> list[str]:
        """Summary lines: ``  15 x CAUSE`` and ``       e.g. SPEC (record ID)``."""
        if not self.groups:
            return []
        ordered = sorted(self.groups.values(), key=lambda g: -g.count)
        lines = ["failures by cause:"]
        for group in ordered[:SHOWN]:
            lines.append(f"  {group.count} x {group.cause}")
            lines.append(f"      e.g. {group.example_spec} (record {group.example_record})")
        rest = ordered[SHOWN:]
        if rest:
            lines.append(
                f"  ... and {sum(g.count for g in rest)} more in {plural(len(rest), 'other cause')}"
            )
        return lines

    def to_json(self) -> list[dict[str, Any]]:
        return [
            {
                "cause": g.cause,
                "count": g.count,
                "example": {"record": g.example_record, "spec": g.example_spec},
            }
            for g in self.groups.values()
        ]


def _cause(record: dict[str, Any]) -> str:
    """The record's first reason, on one line (a provider's message may span several)."""
    message = (record.get("error") or {}).get("message")
    if message:
        return _one_line(str(message))
    errors = output_errors(record.get("output")) or ["output is not valid"]
    return f"invalid output: {_one_line(errors[0])}"


def _one_line(text: str) -> str:
    return " ".join(text.split())
