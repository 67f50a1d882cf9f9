"""The promise of ``runner validate``: a spec it passes is one ``runner render`` renders.

``assert_valid_specs_render(folder)`` validates every spec under a folder and renders every
request of each spec that passed, exactly as ``runner render`` does. ``conftest.py`` runs it
after every test that wrote files into ``tmp_path``, so every valid spec any test writes is
checked too; ``test_validate_render.py`` runs it on the examples and on generated specs.
"""

from __future__ import annotations

from pathlib import Path

from runner.check.validate import find_spec_files, load_spec
from runner.errors import RenderError, RunnerError
from runner.spec.render import render_requests

MAX_SPEC_BYTES = 64 * 1024


def assert_valid_specs_render(folder: Path) -> int:
    """Render every request of every valid spec under ``folder``; the number of specs checked."""
    checked = 0
    for path in find_spec_files([folder]):
        if "runs" in path.parts or path.stat().st_size > MAX_SPEC_BYTES:
            continue
        try:
            spec = load_spec(path)
        except RunnerError:
            continue
        checked += 1
        try:
            for _ in render_requests(spec):
                pass
        except RenderError as exc:
            raise AssertionError(f"validate passed {path} but render refuses it: {exc}") from None
    return checked
