"""What every check of one spec file sees: the file being checked, and the shape of a check.

``runner/validate.py`` builds a ``SpecFile`` for each schema-valid spec, builds the ``Spec`` from
it (collecting problems), then runs every function in ``validate.CHECKS`` on the pair.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from runner.errors import Fix, Problem
from runner.spec.document import Document, PathKey
from runner.spec.objects import Provider, Spec
from runner.spec.project import find_project_root
from runner.spec.render import template_environment


@dataclass(frozen=True)
class SpecFile:
    """One schema-valid spec file: its YAML document (data and positions), the base specs merged
    into it, its project folder, the template environment renders will use, and the variables the
    command line gives."""

    doc: Document
    display: str
    bases: tuple[Document, ...]
    root: Path
    env: jinja2.Environment
    # Template variables the command line gives (--var, --vars-file); they win over all others.
    variables: Mapping[str, Any] = field(default_factory=dict)
    # The provider the command line sets over the spec's own (--provider, --base-url), if any.
    provider: Provider | None = None

    @classmethod
    def of(
        cls,
        doc: Document,
        display: str,
        bases: tuple[Document, ...] = (),
        variables: Mapping[str, Any] | None = None,
        provider: Provider | None = None,
    ) -> SpecFile:
        root = find_project_root(doc.path)
        env = template_environment(root)
        return cls(doc, display, bases, root, env, variables or {}, provider)

    @property
    def data(self) -> dict[str, Any]:
        """The spec's (schema-valid) data, with its bases merged in."""
        return self.doc.data

    def problem(
        self,
        path: PathKey,
        message: str,
        hint: str | None = None,
        *,
        key: bool = False,
        code: str | None = None,
        fix: Fix | None = None,
    ) -> Problem:
        """A Problem at ``path`` (``("tools", 0, "function")``), in whichever file holds it."""
        return self.doc.problem(path, message, hint, key=key, code=code, fix=fix)

    def folder_of(self, path: PathKey) -> Path:
        """The folder of the file holding ``path``: relative references start there."""
        return self.doc.source_of(self.doc.position(path))[0].resolve().parent

    def template_sources(self) -> Iterator[tuple[PathKey, str]]:
        """Every message text that is a template, with its path (local image paths too)."""
        for i, message in enumerate(self.data["messages"]):
            content = message.get("content")
            if isinstance(content, str):
                yield ("messages", i, "content"), content
            elif isinstance(content, list):
                for j, part in enumerate(content):
                    if isinstance(part, dict) and isinstance(part.get("text"), str):
                        yield ("messages", i, "content", j, "text"), part["text"]
                    image = part.get("image_url") if isinstance(part, dict) else None
                    if isinstance(image, dict) and isinstance(image.get("path"), str):
                        yield ("messages", i, "content", j, "image_url", "path"), image["path"]


# A check looks at a spec file and the Spec built from it and returns what is wrong (an empty
# iterable when nothing is). It never raises for a user's mistake and never changes the Spec.
Check = Callable[[SpecFile, Spec], Iterable[Problem]]

__all__ = ["Check", "SpecFile"]
