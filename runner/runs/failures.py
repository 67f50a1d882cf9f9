"""The failures of a run grouped by cause, for the end-of-run summary.

Fifteen requests refused for the same reason are one line with a count and one example, not
fifteen lines: the cause is the record's error sentence with the spec's path taken out (so the
same mistake in several specs is one cause), or the first reason its output is invalid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runner.errors import plural

SHOWN = 10  # causes listed in the summary; the rest are counted in one line


@dataclass
class FailureGroup:
    cause: str
    count: int
    example_record: str
    example_spec: str


@dataclass
class FailureGroups:
    """Causes in the order they first happened, each with a count and its first example."""

    groups: dict[str, FailureGroup] = field(default_factory=dict)

    def add(self, record: dict[str, Any]) -> None:
        if record["status"] == "ok":
            return
        spec = record["spec"]["path"]
        cause = _cause(record).replace(spec, "<spec>")
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
    message = (record.get("error") or {}).get("message")
    if message:
        return str(message)
    errors = (record.get("output") or {}).get("errors") or ["output is not valid"]
    return f"invalid output: {errors[0]}"
