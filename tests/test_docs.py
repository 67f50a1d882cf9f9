"""README.md, CONTRIBUTING.md and docs/ stay true.

Every shell block of README.md and docs/*.md is run here, page by page, in a fresh copy of the
example project (specs/, schemas/, templates/), with no API key and no network:

- a ```sh block is a list of commands, each of which must exit 0;
- a ```console block shows `$ command` lines, each followed by what it prints, which must
  match what it prints now (run folder names and durations aside; a line `...` stands for any
  number of lines);
- `<!-- docs-test: file PATH -->` on the line before a block writes the block to PATH (relative
  to the folder the page's commands are in at that point), for the blocks after it;
- `<!-- docs-test: skip (REASON) -->` on the line before a shell block leaves it out, for what
  cannot run here (a real key, a network, an install);
- `<!-- docs-test: terminal -->` runs the block's commands on a terminal (a pseudo-terminal made
  by `script`), for what runner prints only there: the progress bar's last state and the
  answers of a small run.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()
CONTRIBUTING = (ROOT / "CONTRIBUTING.md").read_text()
DOCS = ROOT / "docs"
PAGES = sorted([ROOT / "README.md", *DOCS.rglob("*.md")], key=lambda p: str(p.relative_to(ROOT)))
SHELLS = {"sh", "bash", "shell", "console"}
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>```+)(?P<lang>[\w-]*)[^\n]*$")
_DIRECTIVE = re.compile(r"<!--\s*docs-test:\s*(?P<verb>skip|file|terminal)\b\s*(?P<arg>.*?)\s*-->")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    lang: str
    text: str
    directive: str  # "", "skip", "file" or "terminal"
    argument: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks_of(page: Path) -> list[Block]:
    """The fenced code blocks of a Markdown page, with the docs-test directive before each."""
    lines = page.read_text().splitlines()
    found = []
    number = 0
    while number < len(lines):
        opening = _FENCE.match(lines[number])
        if not opening:
            number += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        body = []
        end = number + 1
        while end < len(lines) and lines[end].strip() != fence:
            body.append(lines[end][len(indent) :] if lines[end].startswith(indent) else lines[end])
            end += 1
        before = lines[number - 1].strip() if number else ""
        directive = _DIRECTIVE.search(before)
        found.append(
            Block(
                page,
                number + 1,
                opening["lang"],
                "\n".join(body) + "\n",
                directive["verb"] if directive else "",
                directive["arg"] if directive else "",
            )
        )
        number = end + 1
    return found


# What differs from one run to the next: run folder names and durations.
_VARYING = [
    (re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}"), "RUN"),
    (re.compile(r"\bin \d+(\.\d+)?s\b"), "in TIME"),
    (re.compile(r"\b\d+(\.\d+)?/s\b"), "RATE/s"),
    (re.compile(r"\bbatch_offline_[0-9a-f]+"), "batch_offline_ID"),
]
_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _as_on_screen(text: str) -> str:
    """What a terminal shows of ``text``: escape codes gone, a line rewritten after a carriage
    return showing only its last state."""
    lines = _ESCAPE.sub("", text).replace("\r\n", "\n").split("\n")
    return "\n".join(line.rstrip("\r").rsplit("\r", 1)[-1] for line in lines)


def _normal(text: str) -> list[str]:
    for pattern, replacement in _VARYING:
        text = pattern.sub(replacement, text)
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    return lines


def matches(expected: list[str], actual: list[str]) -> bool:
    """Whether ``actual`` is ``expected``, where a line '...' stands for any number of lines."""
    if not expected:
        return not actual
    if expected[0] == "...":
        return any(matches(expected[1:], actual[i:]) for i in range(len(actual) + 1))
    return bool(actual) and actual[0] == expected[0] and matches(expected[1:], actual[1:])


@dataclass(frozen=True)
class Command:
    block: Block
    text: str
    expected: list[str] | None  # what a console block says it prints; None for a sh block


def commands_of(block: Block) -> list[Command]:
    if block.lang == "console":
        commands: list[Command] = []
        for line in block.text.splitlines():
            if line.startswith("$ "):
                commands.append(Command(block, line[2:], []))
            elif commands:
                commands[-1].expected.append(line)  # type: ignore[union-attr]
        return commands
    joined = block.text.replace("\\\n", " ")
    return [
        Command(block, line.strip(), None)
        for line in joined.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]


def _project(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A copy of the example project as a user's clone holds it, and a clean environment."""
    project = tmp_path / "runner"
    for folder in ("specs", "schemas", "templates"):
        shutil.copytree(ROOT / folder, project / folder)
    shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
    home = tmp_path / "home"
    home.mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("RUNNER_") and not key.endswith("_API_KEY")
    }
    bin_dir = str(Path(sys.executable).parent)
    env.update(HOME=str(home), PATH=f"{bin_dir}:{env.get('PATH', '')}", COLUMNS="100")
    env.pop("CI", None)
    return project, env


SEPARATOR = "\x1edocs-test-end"
# The pages' commands are POSIX shell commands (. venv/bin/activate, export, mkdir -p).
POSIX_SHELL = pytest.mark.skipif(
    os.name == "nt" or shutil.which("bash") is None,
    reason="the documentation's commands are for a POSIX shell (bash)",
)


def _on_a_terminal(line: str) -> str:
    """``line`` run on a pseudo-terminal by script(1): util-linux's options, or BSD's (macOS)."""
    if sys.platform == "darwin":
        return f"script -q /dev/null bash -c {shlex.quote(line)}"
    return f"script -qec {shlex.quote(line)} /dev/null"


def run_page(page: Path, tmp_path: Path) -> list[tuple[Command, str, int]]:
    """Runs every shell block of ``page`` in one shell, in order; what each command printed."""
    project, env = _project(tmp_path)
    script = ["cd " + str(project)]
    commands: list[Command] = []
    for block in blocks_of(page):
        if block.directive == "file":  # written when the shell reaches it
            staged = tmp_path / "files" / str(len(script))
            staged.parent.mkdir(exist_ok=True)
            staged.write_text(block.text)
            target = shlex.quote(block.argument)  # where the reader is, as the shell is
            script.append(f"mkdir -p $(dirname {target}) && cp {staged} {target}")
            continue
        if block.lang not in SHELLS or block.directive == "skip":
            continue
        for command in commands_of(block):
            commands.append(command)
            line = command.text
            if block.directive == "terminal":
                line = _on_a_terminal(line)
            script.append(f"{line} 2>&1 </dev/null; printf '\\n{SEPARATOR} %d\\n' $?")
    if not commands:
        return []
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        capture_output=True,
        env=env,
        timeout=300,
        check=False,
    )
    # Decoded by hand: text=True would read each carriage return as a line end, so a progress
    # bar drawn twice on one line (its rate changed between two draws) would read as two lines.
    outputs = done.stdout.decode("utf-8", "replace").split(SEPARATOR)
    results = []
    for i, command in enumerate(commands):
        output = outputs[i] if i < len(outputs) else ""
        if i:
            _, _, output = output.partition("\n")  # the exit code of the command before
        code_text = outputs[i + 1].split("\n", 1)[0].strip() if i + 1 < len(outputs) else ""
        if command.block.directive == "terminal":
            output = _as_on_screen(output)
        results.append((command, output, int(code_text) if code_text.isdigit() else -1))
    return results


@POSIX_SHELL
@pytest.mark.no_render_audit
@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shell_block_runs_as_written(page, tmp_path):
    failures = []
    for command, output, code in run_page(page, tmp_path):
        where = f"{command.block.where}: $ {command.text}"
        if command.expected is None:
            if code != 0:
                failures.append(f"{where}\nexited {code}:\n{output}")
        elif not matches(_normal("\n".join(command.expected)), _normal(output)):
            failures.append(
                f"{where}\nthe page shows:\n"
                + "\n".join(command.expected)
                + f"\nit prints:\n{output}"
            )
    assert not failures, "\n\n".join(failures)


@POSIX_SHELL
def test_a_line_redrawn_on_a_terminal_reads_as_its_last_state(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- docs-test: terminal -->\n```console\n$ printf 'drawn\\rredrawn\\nnext\\n'\n"
        "redrawn\nnext\n```\n"
    )
    [(command, output, code)] = run_page(page, tmp_path)
    assert code == 0
    assert _normal(output) == ["redrawn", "next"] == _normal("\n".join(command.expected or []))


def test_commands_are_in_shell_blocks():
    """A command shown outside a sh or console block would never be run by the test above."""
    stray = []
    for page in PAGES:
        for block in blocks_of(page):
            if block.lang in SHELLS or block.lang in {"yaml", "python", "json", "csv"}:
                continue
            stray += [
                f"{block.where}: {line}"
                for line in block.text.splitlines()
                if line.startswith(("$ runner", "runner "))
            ]
    assert stray == []


def test_every_skipped_block_says_why():
    for page in PAGES:
        for block in blocks_of(page):
            if block.directive == "skip":
                assert block.argument.startswith("("), block.where


# README


def test_readme_is_short_and_starts_with_the_users_install():
    lines = README.splitlines()
    assert len(lines) <= 300
    installs = [line for line in lines if "pip install" in line]
    assert installs and ".[dev]" not in installs[0] and "[dev]" not in installs[0], installs[:1]


def test_readme_holds_the_two_commands_that_prove_a_fresh_machine():
    """One runs the example specs offline, one runs the test suite: the command CI runs."""
    ci = (ROOT / ".ci" / "run").read_text()
    assert "runner run specs/ --provider offline" in README
    assert "python -m pytest\n" in README
    assert re.search(r"^ *python -m pytest$", ci, re.MULTILINE)  # a whole line (in a loop)
    assert "python -m pytest\n" in CONTRIBUTING


def test_readme_links_resolve():
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README):
        if "://" not in target:
            assert (ROOT / target).exists(), target


def test_readme_names_every_command():
    from click.testing import CliRunner

    from runner.cli.main import cli

    listed = CliRunner().invoke(cli, ["--help"]).output.split("Commands:")[1]
    names = [line.split()[0] for line in listed.splitlines() if line.strip()]
    assert [n for n in names if f"runner {n}" not in README] == []


# docs


def test_every_page_is_in_the_nav():
    import yaml

    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())

    def pages(nav) -> list[str]:
        if isinstance(nav, str):
            return [nav]
        if isinstance(nav, dict):
            return [p for value in nav.values() for p in pages(value)]
        return [p for item in nav for p in pages(item)]

    listed = set(pages(config["nav"]))
    present = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert present - listed == set(), "add these pages to the nav of mkdocs.yml"
    assert listed - present == set(), "mkdocs.yml lists pages that docs/ does not have"


def test_the_key_reference_is_generated_from_the_schema():
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "spec_keys.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_key_reference_covers_every_key_of_the_schema():
    schema = json.loads((ROOT / "schemas" / "spec.schema.json").read_text())
    page = (DOCS / "reference" / "spec-keys.md").read_text()
    documented = set(re.findall(r"^\| `([A-Za-z_$]+)`", page, flags=re.MULTILINE))

    def keys(node) -> set[str]:
        if isinstance(node, dict):
            own = (
                set(node.get("properties", {}))
                if isinstance(node.get("properties"), dict)
                else set()
            )
            return own | {k for value in node.values() for k in keys(value)}
        if isinstance(node, list):
            return {k for value in node for k in keys(value)}
        return set()

    assert keys(schema) - documented == set()


def test_the_reference_knows_runners_own_keys():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import spec_keys
    finally:
        sys.path.pop(0)
    from runner.spec.objects import RUNNER_KEYS

    assert spec_keys.RUNNER_KEYS == RUNNER_KEYS


def test_every_run_option_is_documented():
    from runner.cli.run import run

    commands = (DOCS / "commands.md").read_text()
    for param in run.params:
        for option in param.opts:
            if option.startswith("--"):
                assert f"`{option}" in commands or f" {option}" in commands, option


def test_every_environment_variable_is_documented():
    commands = (DOCS / "commands.md").read_text()
    used = set()
    for module in (ROOT / "runner").rglob("*.py"):
        used |= set(re.findall(r"\"(RUNNER_[A-Z_]+)\"", module.read_text()))
    assert {name for name in used if f"`{name}`" not in commands} == set()


# CONTRIBUTING and every file


def test_no_file_holds_a_merge_conflict_marker():
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.split()
    markers = re.compile(r"^(<<<<<<< |=======$|>>>>>>> )", flags=re.MULTILINE)
    for name in tracked or ["README.md", "CONTRIBUTING.md"]:
        path = ROOT / name
        if path.suffix in {".md", ".py", ".yaml", ".yml", ".j2", ".toml", ""} and path.is_file():
            assert not markers.search(path.read_text(errors="replace")), name


def test_the_module_map_names_every_module():
    package = ROOT / "runner"
    section = CONTRIBUTING.split("Where things happen", 1)[1]
    for path in package.rglob("*.py"):
        if path.name in {"__init__.py", "__main__.py"}:
            continue
        wing = path.parent.relative_to(package).as_posix()
        row = next((line for line in section.splitlines() if f"`{wing}/`" in line), section)
        assert f"`{path.name}`" in (row if wing != "." else section), path.relative_to(ROOT)


def test_command_lists_in_help_are_not_cut_off():
    from click.testing import CliRunner

    from runner.cli.main import cli

    for args in ([], ["batch"], ["cache"]):
        shown = CliRunner().invoke(cli, [*args, "--help"]).output
        listed = shown.split("Commands:")[1]
        assert "..." not in listed, listed
