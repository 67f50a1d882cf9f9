"""Score runner validate on the held-out realistic mistakes (tests/data/heldout/mistakes.yaml).

A case counts as caught when some problem is in the case's file at its line (or one of its
lines) and that problem's message with its hint contains every piece of the expected fix.
The set is kept apart from the tests of the checks, so the checks are not tuned to it; run
``python tests/heldout.py`` to print the score per set and each miss.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

MISTAKES = Path(__file__).parent / "data" / "heldout" / "mistakes.yaml"


@dataclass(frozen=True)
class Outcome:
    name: str
    set: str
    caught: bool
    seen: tuple[str, ...]  # the problems runner validate printed for the case


def _normal(text: str) -> str:
    return re.sub(r"\s+", " ", text).lower()


def load_cases() -> list[dict]:
    return yaml.safe_load(MISTAKES.read_text(encoding="utf-8"))["cases"]


def score_case(case: dict, folder: Path) -> Outcome:
    from runner.api import validate_specs

    root = folder / case["name"]
    root.mkdir()
    (root / "runner.yaml").write_text("version: 1\n")
    for name, text in case["files"].items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    lines = case["line"] if isinstance(case["line"], list) else [case["line"]]
    wanted_file = case.get("file", "spec.yaml")
    before = Path.cwd()
    os.chdir(root)
    try:
        result = validate_specs(Path("spec.yaml"))
    finally:
        os.chdir(before)
    caught = False
    seen = []
    for problem in result.problems:
        text = problem.message + " " + (problem.hint or "")
        seen.append(str(problem))
        at_line = Path(problem.path).as_posix() == wanted_file and problem.line in lines
        if at_line and all(_normal(piece) in _normal(text) for piece in case["fix"]):
            caught = True
    return Outcome(case["name"], case["set"], caught, tuple(seen))


def score_all() -> list[Outcome]:
    with tempfile.TemporaryDirectory() as folder:
        return [score_case(case, Path(folder)) for case in load_cases()]


def summary(outcomes: list[Outcome]) -> str:
    lines = []
    for name in sorted({o.set for o in outcomes}):
        in_set = [o for o in outcomes if o.set == name]
        lines.append(f"{name}: {sum(o.caught for o in in_set)} of {len(in_set)}")
    total = sum(o.caught for o in outcomes)
    lines.append(f"all: {total} of {len(outcomes)}")
    return "\n".join(lines)


def main() -> int:
    outcomes = score_all()
    for outcome in outcomes:
        if not outcome.caught:
            print(f"MISSED {outcome.set}/{outcome.name}")
            for seen in outcome.seen or ("(no problem reported)",):
                print(f"    {seen}")
    print(summary(outcomes))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.exit(main())
