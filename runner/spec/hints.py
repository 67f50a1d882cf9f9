"""The commonest mistakes in a spec, recognised and explained with the line as it should be.

Each was seen tripping up people who write prompts in YAML (ours and those of similar tools):
a template left unquoted, which YAML reads as a mapping; a tool's name given as ``tool_choice``;
a message's keys not lined up under its ``- ``; a message field at the top level; one message
split into two items. ``runner/spec/load.py`` asks ``yaml_mistake`` about YAML syntax errors and
``runner/check/explain.py`` asks the others before its generic explanations.

It also holds did-you-mean (``close_matches``, ``closest``, ``did_you_mean``, ``is_slip``): the
name a person most likely meant, by case, separators and edit distance, one way for every kind
of name (keys, template variables, data-file columns, file names, model ids, enum values).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runner.spec.document import Document, PathKey

TOOL_CHOICE_WORDS = ("none", "auto", "required")
MESSAGE_FIELDS = frozenset({"role", "content", "tool_calls", "tool_call_id"})

# `key: {{ ...`, `- {% ...` or `- key: {# ...`: a plain value that starts a flow mapping.
_UNQUOTED = re.compile(r"^(?P<prefix>\s*(?:-\s+)?(?:[^\s:#{][^:#]*:\s+)?)(?P<value>\{[{%#].*?)\s*$")
_ITEM = re.compile(r"^(?P<indent>\s*)-\s+(?P<key>[^\s:#][^:#]*):")
_KEY = re.compile(r"^(?P<indent>\s*)(?:-\s+)?(?P<key>[^\s:#-][^:#]*):")


def yaml_mistake(text: str, line_index: int) -> tuple[str, str, int] | None:
    """(message, hint, column) for a YAML syntax error on the 0-based line ``line_index`` that
    comes from a common mistake; None for any other error."""
    lines = text.splitlines()
    if not 0 <= line_index < len(lines):
        return None
    return unquoted_template(lines[line_index]) or _misaligned(lines, line_index)


def unquoted_template(line: str) -> tuple[str, str, int] | None:
    """A value starting with ``{{``, ``{%`` or ``{#`` that is not quoted: YAML reads it as a
    mapping (or fails); the fix is the same line with the value in double quotes."""
    match = _UNQUOTED.match(line)
    if match is None:
        return None
    value = match["value"]
    fixed = match["prefix"].strip() + (" " if match["prefix"].strip() else "")
    fixed += json.dumps(value, ensure_ascii=False)
    return (
        f"a template starting with '{value[:2]}' must be quoted: YAML reads {value[:2]} ... "
        f"{_closing(value[:2])} as a mapping",
        f"write it as: {fixed}",
        len(match["prefix"]) + 1,
    )


def _closing(opening: str) -> str:
    return {"{{": "}}", "{%": "%}", "{#": "#}"}[opening]


def _misaligned(lines: list[str], index: int) -> tuple[str, str, int] | None:
    """A key not lined up with the keys of the list item above it (``- role: user``)."""
    line = lines[index]
    key = _KEY.match(line)
    if key is None or line.lstrip().startswith("-"):
        return None
    indent = len(key["indent"])
    for above in reversed(lines[:index]):
        if not above.strip() or above.lstrip().startswith("#"):
            continue
        item = _ITEM.match(above)
        if item is None:
            return None
        column = above.index(item["key"])
        if indent == column:
            return None
        fixed = " " * column + line.strip()
        where = "deeper than" if indent > column else "less deep than"
        return (
            f"'{key['key'].strip()}:' is indented {where} '{item['key'].strip()}:' of the list "
            "item above it",
            f"line up the keys of one item after its '- ': {fixed!r}",
            indent + 1,
        )
    return None


def tool_choice_mistake(value: str) -> tuple[str, str] | None:
    """A tool's name given as ``tool_choice``: show the object form with that name."""
    if value in TOOL_CHOICE_WORDS:
        return None
    return (
        f"'tool_choice' is none, auto, required, or an object naming one tool (got {value!r})",
        f"to make the model call {value}, write: "
        f"tool_choice: {{type: function, function: {{name: {value}}}}}",
    )


def top_level_message_field(key: str) -> str | None:
    """A hint for a message's key (``content:``) that ended up at the top level of the spec."""
    if key not in MESSAGE_FIELDS:
        return None
    return (
        f"'{key}' belongs to a message: indent it under its item in 'messages:', lined up "
        "with 'role:'"
    )


def split_message(path: PathKey, missing: str, doc: Document) -> str | None:
    """A hint when one message was split into two list items (a ``- `` too many)."""
    if len(path) != 2 or path[0] != "messages" or not isinstance(path[1], int):
        return None
    messages = doc.data.get("messages") if isinstance(doc.data, dict) else None
    if not isinstance(messages, list):
        return None
    index = path[1]
    item = messages[index]
    before = messages[index - 1] if index > 0 else None
    if missing == "role" and isinstance(before, dict) and "content" not in before:
        return (
            "each '- ' starts a new message; if this belongs to the message above, remove "
            "its '- ' and line it up with 'role:'"
        )
    if missing == "content" and index + 1 < len(messages) and isinstance(item, dict):
        after = messages[index + 1]
        if isinstance(after, dict) and "role" not in after and "content" in after:
            return "its 'content:' has a '- ' of its own below; remove that '- '"
    return None


# ---- did-you-mean

_SEPARATORS = re.compile(r"[\s_\-.]+")


def close_matches(word: str, choices: Iterable[str]) -> list[str]:
    """The choices ``word`` is most likely a slip of, best first (ties kept, at most three):
    the same name in other case or with other separators (``Ticket``, ``customer-name``), else
    the fewest edits (a swap of two letters is one), within a limit that grows with length."""
    options = [c for c in dict.fromkeys(choices) if c != word]
    if not word or not options:
        return []
    folded = [c for c in options if _fold(c) == _fold(word)]
    if folded:
        return folded[:3]
    limit = _limit(word)
    distances = ((_distance(word.lower(), c.lower()), c) for c in options)
    # a guess keeps most of the word: 'g' is no slip of 'f', though one edit away
    scored = sorted(
        (d, c) for d, c in distances if d <= min(limit, _limit(c)) and d < min(len(word), len(c))
    )
    if not scored:
        return []
    best = scored[0][0]
    return [c for d, c in scored if d == best][:3]


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The one choice ``word`` most likely means, or None when there is none or several."""
    found = close_matches(word, choices)
    return found[0] if len(found) == 1 else None


def did_you_mean(word: str, choices: Iterable[str], quote: str = "'") -> str | None:
    """``did you mean 'x'?`` (or ``'x' or 'y'``) for ``word``, or None when nothing is close."""
    found = close_matches(word, choices)
    if not found:
        return None
    return "did you mean " + " or ".join(f"{quote}{c}{quote}" for c in found) + "?"


def is_slip(word: str, meant: str) -> bool:
    """Whether ``meant`` differs from ``word`` only by case, separators or one edit: a
    correction safe to apply without asking (``runner validate --fix``)."""
    return _fold(word) == _fold(meant) or _distance(word.lower(), meant.lower()) <= 1


def _fold(name: str) -> str:
    return _SEPARATORS.sub("", name).lower()


def _limit(word: str) -> int:
    """How many edits still make a slip: 1 for short names, up to 3 for long ones."""
    n = len(word)
    return 1 if n <= 4 else 2 if n <= 9 else 3


def _distance(a: str, b: str) -> int:
    """Edit distance where inserting, deleting, changing or swapping two neighbouring
    characters each cost one (optimal string alignment)."""
    if abs(len(a) - len(b)) > 3:
        return 4
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            cost = 0 if ca == cb else 1
            value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                value = min(value, previous2[j - 2] + 1)
            current.append(value)
        previous2, previous = previous, current
    return previous[-1]
