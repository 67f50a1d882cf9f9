"""The Jinja sandbox templates run in: no Python internals, and a bound on the work they ask for.

Jinja's immutable sandbox already refuses attribute tricks (``__class__``, ``__globals__``,
...). A spec from someone else's repository could still ask for a string of a billion
characters or loops that never end; this sandbox refuses those with a SecurityError before the
memory is taken: ``*`` and ``**``, ``range``, the widening filters (``center``, ``indent``,
``join``, ``replace``, ``format``) and the widening string methods (``ljust``, ``zfill``,
``join``, ``replace``, ``format``, ...), and ``%`` formatting with huge widths.

Each of those is bounded alone; a loop could still repeat one a million times. So a render
also has two totals: its output (``MAX_OUTPUT`` characters, counted as Jinja produces it, so
the text is never all built first) and the text it builds on the way (``MAX_BUILT``: the
results of ``*``, ``+``, ``~``, the widening filters and methods, macro calls and ``{% set %}``
blocks, added up). Past either, the render stops with a SecurityError.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from jinja2 import Template, filters, nodes, pass_eval_context
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment, safe_range

MAX_TEXT = 1_000_000  # characters or items one operation may produce
MAX_RANGE_TOTAL = 1_000_000  # numbers all range() calls of one template may produce
MAX_EXPONENT = 10_000
MAX_OUTPUT = 2_000_000  # characters one render may output
MAX_BUILT = 20_000_000  # characters one render may build on the way, in all
MAX_LOOP_STEPS = 2_000_000  # iterations all {% for %} loops of one render may take
LOOP_FILTER = "runner_loop_steps"  # the filter every loop's iterable goes through
_WIDE_FORMAT = re.compile(r"[%{:][^%{}]*?\d{7,}")  # a width or precision of 7+ digits
_range_budget: ContextVar[list[int]] = ContextVar("range_budget")
_built_budget: ContextVar[list[int]] = ContextVar("built_budget")
_loop_budget: ContextVar[list[int]] = ContextVar("loop_budget")


@contextmanager
def work_budget() -> Iterator[None]:
    """Give the template rendered inside a fresh range() budget and text budget."""
    token = _range_budget.set([MAX_RANGE_TOTAL])
    built = _built_budget.set([MAX_BUILT])
    steps = _loop_budget.set([MAX_LOOP_STEPS])
    try:
        yield
    finally:
        _loop_budget.reset(steps)
        _built_budget.reset(built)
        _range_budget.reset(token)


def _charge(size: int) -> None:
    """Count ``size`` characters built against the render's MAX_BUILT."""
    budget = _built_budget.get(None)
    if budget is not None:
        budget[0] -= size
        if budget[0] < 0:
            raise SecurityError(
                f"the template builds more than {MAX_BUILT:,} characters of text in all "
                "(a loop repeating a large text?)"
            )


class BoundedTemplate(Template):
    """A template whose ``render`` stops once the output passes ``MAX_OUTPUT`` characters,
    counted piece by piece as Jinja yields them."""

    def render(self, *args: Any, **kwargs: Any) -> str:
        parts: list[str] = []
        size = 0
        for part in self.generate(*args, **kwargs):
            size += len(part)
            if size > MAX_OUTPUT:
                raise SecurityError(
                    f"the template's output passes {MAX_OUTPUT:,} characters (the limit)"
                )
            parts.append(part)
        return "".join(parts)


class _BoundedCodeGenerator(CodeGenerator):
    """Jinja's code generator, with each ``~`` result counted (``TemplateSandbox.joined``),
    each piece of output counted where it is made (a macro's or a ``{% set %}`` block's
    pieces are gathered in a list before they are joined: ``TemplateSandbox.counted``), and
    each step of a ``{% for %}`` loop counted (the ``LOOP_FILTER`` filter, ``_loop_steps``)."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.joined(")
        super().visit_Concat(node, frame)
        self.write(")")

    def _output_const_repr(self, group: Any) -> str:
        return f"environment.counted({super()._output_const_repr(group)})"

    def _output_child_pre(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        self.write("environment.counted(")
        super()._output_child_pre(node, frame, finalize)

    def _output_child_post(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        super()._output_child_post(node, frame, finalize)
        self.write(")")


class TemplateSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, also bounding the work one template can ask for."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})
    template_class = BoundedTemplate
    code_generator_class = _BoundedCodeGenerator

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
        self.filters[LOOP_FILTER] = _loop_steps

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for items, times in ((left, right), (right, left)):
                if isinstance(items, str | list | tuple) and isinstance(times, int):
                    _check(len(items) * times, "'*'")
        if operator == "**" and isinstance(right, int) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"the exponent {right:,} is too large")
        if operator == "%" and isinstance(left, str):
            _check_format(left)
        if operator == "+" and isinstance(left, str | list | tuple):
            _check(len(left) + _size(right), "'+'")
        result = super().call_binop(context, operator, left, right)
        if operator == "%" and isinstance(result, str):
            _charge(len(result))
        return result

    def _generate(self, source: Any, name: Any, filename: Any, defer_init: bool = False) -> Any:
        """Each ``{% for %}`` loop's iterable goes through the ``LOOP_FILTER`` filter, which
        counts the steps of all loops of a render (a loop over a long text gives no output
        and calls no range(), so no other budget sees it)."""
        for loop in source.find_all(nodes.For):
            counted = nodes.Filter(loop.iter, LOOP_FILTER, [], [], None, None)
            counted.set_lineno(loop.lineno)
            counted.set_environment(self)
            loop.iter = counted
        return super()._generate(source, name, filename, defer_init=defer_init)

    def concat(self, parts: Any) -> str:
        """The text of a macro call, a ``{% set %}`` block or a filter block, counted."""
        text = "".join(parts)
        _charge(len(text))
        return text

    def counted(self, text: Any) -> Any:
        """A piece of output, counted against the render's MAX_BUILT."""
        _charge(len(text))
        return text

    def joined(self, text: Any) -> Any:
        """A ``~`` result, counted."""
        _check(len(text), "'~'")
        _charge(len(text))
        return text

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
    _charge(size)


def _size(value: Any) -> int:
    return len(value) if isinstance(value, str | list | tuple) else 0


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


def _loop_steps(items: Any) -> Any:
    """The items of a ``{% for %}`` loop, each step counted against MAX_LOOP_STEPS."""
    budget = _loop_budget.get(None)
    if budget is None:
        return items
    return _counted_steps(items, budget)


def _counted_steps(items: Any, budget: list[int]) -> Iterator[Any]:
    for item in items:
        budget[0] -= 1
        if budget[0] < 0:
            raise SecurityError(
                f"the template's loops take more than {MAX_LOOP_STEPS:,} steps in all"
            )
        yield item


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


__all__: list[str] = ["MAX_BUILT", "MAX_OUTPUT", "MAX_TEXT", "TemplateSandbox", "work_budget"]
