"""``runner init``: scaffold a working project that marks itself and validates as it is.

Writes ``runner.yaml`` (the marker and its settings), ``specs/hello.yaml`` (with the editor
schema line), ``schemas/`` (the spec schema for editors and the starter's response schema),
``templates/voice.j2`` and a ``.gitignore`` for run outputs and the cache. An existing file is
never overwritten: it is kept and reported as such.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from runner.errors import UsageError
from runner.spec.project import CONFIG_FILE

# Where each scaffold file goes, relative to the project folder.
FILES = {
    CONFIG_FILE: "runner.yaml",
    "specs/hello.yaml": "hello.yaml",
    "schemas/greeting.schema.json": "greeting.schema.json",
    "templates/voice.j2": "voice.j2",
    ".gitignore": "gitignore",
}
SPEC_SCHEMA = "schemas/spec.schema.json"


@dataclass(frozen=True)
class InitResult:
    """What ``init_project`` wrote and what it left alone, relative to the project folder."""

    folder: Path
    created: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)

    def describe(self, shown_folder: str) -> str:
        """The files and the commands to run next, for a person."""
        lines = [f"created {name}" for name in self.created]
        lines += [f"kept {name} (it exists; not overwritten)" for name in self.kept]
        go = "" if shown_folder in ("", ".") else f"cd {shown_folder}\n  "
        lines += [
            "",
            "Next:",
            f"  {go}runner validate specs/",
            "  runner run specs/ --provider offline      # no key, no network",
            "  export GROQ_API_KEY=...; runner run specs/",
        ]
        return "\n".join(lines)


def init_project(folder: Path) -> InitResult:
    """Scaffold a project in ``folder`` (created if missing), never overwriting a file."""
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder} exists and is not a folder")
    result = InitResult(folder)
    scaffold = resources.files("runner.spec").joinpath("scaffold")
    contents = {target: scaffold.joinpath(source) for target, source in FILES.items()}
    contents[SPEC_SCHEMA] = resources.files("runner").joinpath("spec.schema.json")
    for target, source in contents.items():
        path = folder / target
        if path.exists():
            result.kept.append(target)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "x", encoding="utf-8") as handle:  # "x": never replace a file
            handle.write(source.read_text(encoding="utf-8"))
        result.created.append(target)
    return result
