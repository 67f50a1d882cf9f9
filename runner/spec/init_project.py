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
    _refuse_files_in_the_way(folder, folder)
    result = InitResult(folder)
    scaffold = resources.files("runner.spec").joinpath("scaffold")
    contents = {target: scaffold.joinpath(source) for target, source in FILES.items()}
    contents[SPEC_SCHEMA] = resources.files("runner").joinpath("spec.schema.json")
    for target, source in contents.items():
        path = folder / target
        _refuse_files_in_the_way(path.parent, folder)
        if path.is_dir():
            raise UsageError(f"{path} is a folder where runner init writes a file: move it away")
        if path.exists():
            result.kept.append(target)
            continue
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "x", encoding="utf-8") as handle:  # "x": never replace a file
                handle.write(source.read_text(encoding="utf-8"))
        except OSError as exc:
            raise UsageError(f"cannot write {path}: {exc.strerror}") from None
        result.created.append(target)
    return result


def _refuse_files_in_the_way(wanted: Path, folder: Path) -> None:
    """A UsageError when a file stands where ``wanted`` or one of its parents must be a folder
    (``runner init notes.txt/project``, or a file named ``specs``)."""
    for part in (*reversed(wanted.parents), wanted):
        if part.exists() and not part.is_dir():
            where = "the project folder" if part == folder else "a folder"
            raise UsageError(
                f"{part} is a file, where runner init needs {where}: "
                "rename or move it, or give runner init another folder"
            )
