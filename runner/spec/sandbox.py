"""The Jinja sandbox templates run in: no Python internals, and a bound on the work they ask for.

Jinja's immutable sandbox already refuses attribute tricks (``__class__``, ``__globals__``,
...). A spec from someone else's repository could still ask for a string of a billion
characters or loops that never end; this sandbox refuses those with a SecurityError before the
memory is taken: ``*`` and ``**``, ``range``, the widening filters (``center``, ``indent``,
``join``, ``replace``, ``format``) and the widening string methods (``ljust``, ``zfill``,
``join``, ``replace``, ``format``, ...), and ``%`` formatting with huge widths.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from jinja2 import filters, pass_eval_context
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment, safe_range

MAX_TEXT = 1_000_000  # characters or items one operation may produce
MAX_RANGE_TOTAL = 1_000_000  # numbers all range() calls of one template may produce
MAX_EXPONENT = 10_000
_WIDE_FORMAT = re.compile(r"[%{:][^%{}]*?\d{7,}")  # a width or precision of 7+ digits
_range_budget: ContextVar[list[int]] = ContextVar("range_budget")


@contextmanager
def work_budget() -> Iterator[None]:
    """Give the template rendered inside a fresh range() budget."""
    token = _range_budget.set([MAX_RANGE_TOTAL])
    try:
        yield
    finally:
        _range_budget.reset(token)


class TemplateSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, also bounding the work one template can ask for."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def __init__(self, **options: Any):
        super().__init__(**options)
        self.globals["range"] = _budgeted_range
        self.filters.update(
            center=_bounded_center,
            indent=_bounded_indent,
            join=_bounded_join,
            replace=_bounded_replace,
            format=_bounded_format,
        )

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for items, times in ((left, right), (right, left)):
                if isinstance(items, str | list | tuple) and isinstance(times, int):
                    _check(len(items) * times, "'*'")
        if operator == "**" and isinstance(right, int) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"the exponent {right:,} is too large")
        if operator == "%" and isinstance(left, str):
            _check_format(left)
        return super().call_binop(context, operator, left, right)

    def wrap_str_format(self, value: Any) -> Any:
        owner = getattr(value, "__self__", None)
        if isinstance(owner, str):
            _check_format(owner)
        return super().wrap_str_format(value)

    def call(self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str):
            _check_str_method(owner, getattr(__obj, "__name__", ""), args)
        return super().call(__context, __obj, *args, **kwargs)


def _check(size: int, what: str) -> None:
    if size > MAX_TEXT:
        raise SecurityError(
            f"{what} would make {size:,} characters or items (the limit is {MAX_TEXT:,})"
        )


def _check_format(text: str) -> None:
    if _WIDE_FORMAT.search(text):
        raise SecurityError("a format width or precision of a million or more is not allowed")


def _width(value: Any) -> int:
    return value if isinstance(value, int) else len(str(value))


def _check_str_method(text: str, name: str, args: tuple[Any, ...]) -> None:
    if name in ("ljust", "rjust", "center", "zfill") and args:
        _check(_width(args[0]), f"'{name}'")
    elif name == "expandtabs":
        _check(len(text) + text.count("\t") * _width(args[0] if args else 8), "'expandtabs'")
    elif name == "join" and args:
        _check_join(text, args[0])
    elif name == "replace" and len(args) >= 2:
        _check(len(text) + text.count(str(args[0])) * len(str(args[1])), "'replace'")
    elif name in ("format", "format_map"):
        _check_format(text)


def _check_join(separator: str, items: Any) -> list[Any]:
    listed = list(items)
    _check(len(separator) * max(len(listed) - 1, 0), "'join'")
    return listed


def _budgeted_range(*args: int) -> range:
    numbers = safe_range(*args)
    budget = _range_budget.get(None)
    if budget is not None:
        budget[0] -= len(numbers)
        if budget[0] < 0:
            raise SecurityError(
                f"the template's loops go over more than {MAX_RANGE_TOTAL:,} numbers in all"
            )
    return numbers


def _bounded_center(value: str, width: int = 80) -> str:
    _check(_width(width), "center")
    return filters.do_center(value, width)


def _bounded_indent(s: str, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
    _check(len(str(s)) + (str(s).count("\n") + 1) * _width(width), "indent")
    return filters.do_indent(s, width, first, blank)


@pass_eval_context
def _bounded_join(eval_ctx: Any, value: Any, d: str = "", attribute: Any = None) -> str:
    return filters.do_join(eval_ctx, _check_join(str(d), value), d, attribute)


@pass_eval_context
def _bounded_replace(eval_ctx: Any, s: str, old: str, new: str, count: int | None = None) -> str:
    text = str(s)
    _check(len(text) + text.count(str(old)) * len(str(new)), "replace")
    return filters.do_replace(eval_ctx, s, old, new, count)


def _bounded_format(value: str, *args: Any, **kwargs: Any) -> str:
    _check_format(str(value))
    return filters.do_format(value, *args, **kwargs)


__all__: list[str] = ["MAX_TEXT", "TemplateSandbox", "work_budget"]
