"""Names in templates that are not what they seem: ``{{ customer-name }}``, which Jinja reads
as ``customer`` minus ``name``, and a variable that is a slip of one the spec has
(``{{ Ticket }}`` for ``ticket``). Both come with the template as it should be written."""

from __future__ import annotations

import re
from collections.abc import Iterator

import jinja2
import jinja2.meta
import jinja2.nodes

_BLOCKS = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)


def minus_names(parsed: jinja2.nodes.Template, source: str) -> Iterator[tuple[str, list[str]]]:
    """Each ``a-b`` (or ``a-b-c``) written without spaces, which Jinja reads as a subtraction
    of the variables ``a`` and ``b``: the name as written and the variables it reads."""
    seen: set[str] = set()
    for node in parsed.find_all(jinja2.nodes.Sub):
        names = _chain(node)
        if names is None:
            continue
        written = "-".join(names)
        if written in seen or not re.search(rf"(?<![\w.]){re.escape(written)}(?![\w-])", source):
            continue
        seen.add(written)
        yield written, names


def _chain(node: jinja2.nodes.Node) -> list[str] | None:
    if isinstance(node, jinja2.nodes.Name):
        return [node.name]
    if isinstance(node, jinja2.nodes.Sub):
        left, right = _chain(node.left), _chain(node.right)
        if left is not None and right is not None and len(right) == 1:
            return [*left, *right]
    return None


def renamed(env: jinja2.Environment, source: str, old: str, new: str) -> str | None:
    """``source`` with the variable ``old`` (or ``a-b`` as written) written ``new`` inside its
    ``{{ }}`` and ``{% %}`` blocks; None unless the result reads exactly ``new`` where it read
    ``old`` (so a fix never changes anything else in the template)."""
    word = re.compile(rf"(?<![\w.'\"]){re.escape(old)}(?![\w'\"-])")
    text = _BLOCKS.sub(lambda m: word.sub(new, m.group(0)), source)
    if text == source:
        return None
    try:
        before = jinja2.meta.find_undeclared_variables(env.parse(source))
        after = jinja2.meta.find_undeclared_variables(env.parse(text))
    except jinja2.TemplateSyntaxError:
        return None
    gone = set(old.split("-"))
    if new not in after or not after - {new} <= before or before - after - gone:
        return None
    return text
