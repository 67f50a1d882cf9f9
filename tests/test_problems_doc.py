"""docs/problems.md lists every problem code with an example, and each example prints what
the page says it prints (issue 23)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runner.check.codes import CODES

DOC = Path(__file__).resolve().parent.parent / "docs" / "problems.md"
PROJECT = "/home/you/project"
BLOCK = re.compile(r'```\w+ title="([^"]+)"\n(.*?)```', re.S)


def sections() -> dict[str, str]:
    parts = re.split(r"^#### `([a-z-]+)`$", DOC.read_text(encoding="utf-8"), flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_every_code_is_documented():
    assert sorted(sections()) == sorted(CODES)


@pytest.mark.parametrize("code", [c for c, text in sections().items() if "title=" in text])
def test_each_example_prints_what_the_page_shows(tmp_path, monkeypatch, run_cli, code):
    files = dict(BLOCK.findall(sections()[code]))
    shown = files.pop("runner validate prints").splitlines()
    if "runner.yaml" not in files:
        files["runner.yaml"] = "version: 1\n"
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)

    specs = [name for name in ("spec.yaml", "other.yaml") if name in files]
    printed = run_cli("validate", *specs).stdout.replace(str(tmp_path.resolve()), PROJECT)

    assert shown and all(line.endswith(f"[{code}]") for line in shown)
    for line in shown:
        assert line in printed.splitlines()


def _rewrite_outputs() -> None:
    """Print each example's output into the page again (after a message changed on purpose):
    ``python tests/test_problems_doc.py``."""
    import os
    import subprocess
    import sys
    import tempfile

    text = DOC.read_text(encoding="utf-8")
    for code, section in sections().items():
        files = dict(BLOCK.findall(section))
        shown = files.pop("runner validate prints", None)
        if shown is None:
            continue
        files.setdefault("runner.yaml", "version: 1\n")
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder) / "project"
            for name, body in files.items():
                (root / name).parent.mkdir(parents=True, exist_ok=True)
                (root / name).write_text(body)
            specs = [name for name in ("spec.yaml", "other.yaml") if name in files]
            printed = subprocess.run(
                [sys.executable, "-m", "runner", "validate", *specs],
                cwd=root,
                capture_output=True,
                text=True,
                check=False,
                env={**os.environ, "PYTHONPATH": str(DOC.parent.parent)},
            ).stdout.replace(str(root.resolve()), PROJECT)
        lines = [line for line in printed.splitlines() if line.endswith(f"[{code}]")]
        new_section = section.replace(shown, "\n".join(lines) + "\n")
        text = text.replace(section, new_section)
    DOC.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    _rewrite_outputs()
