"""Bounds on one render: how many steps it may take (loop turns, calls, filters, operators), how
long, and how much text it may make. Jinja's sandbox limits each ``range`` but not the work of
nested loops, nor a string multiplied to a gigabyte: a clinic template that runs away is stopped
here and reported as a RenderError, never left to hang a send.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from attrs import frozen
from jinja2 import Template, nodes
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import _PassArg

LOOP_FILTER = "_emrcomm_bounded"  # wraps every for loop's iterable (see bound_loops)
_CHECK_CLOCK_EVERY = 512  # steps between two looks at the clock
# A %-format or str.format width or precision of five digits or more, or one taken from the arguments.
_WIDE_PERCENT = re.compile(r"%[#0\- +]*(\*|[0-9]{5,}|[0-9]*\.(\*|[0-9]{5,}))")
_WIDE_BRACES = re.compile(r"\{[^{}]*:[^{}]*[0-9]{5,}[^{}]*\}")


class RenderLimit(Exception):
    """A render went past one of its bounds; the message says which, never what it would show."""


@frozen
class RenderBounds:
    """``[plugins.templates]`` render_steps, render_seconds, render_chars."""

    steps: int = 200_000
    seconds: float = 2.0
    chars: int = 100_000


class _Budget:
    def __init__(self, bounds: RenderBounds) -> None:
        self.bounds = bounds
        self.left = bounds.steps
        self.deadline = time.monotonic() + bounds.seconds

    def step(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise RenderLimit(f"took more than {self.bounds.steps:,} steps (render_steps)")
        if self.left % _CHECK_CLOCK_EVERY == 0 and time.monotonic() > self.deadline:
            raise RenderLimit(f"ran longer than {self.bounds.seconds:g} s (render_seconds)")


_DEFAULT = RenderBounds()
_BUDGET: ContextVar[_Budget | None] = ContextVar("emrcomm_render_budget", default=None)


def _step() -> _Budget | None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.step()
    return budget


def _check_size(size: int, budget: _Budget | None, what: str) -> None:
    limit = (budget.bounds if budget is not None else _DEFAULT).chars
    if size > limit:
        raise RenderLimit(f"{what} of {size:,} (more than render_chars, {limit:,})")


def _check_format(pattern: str, braces: bool = False) -> None:
    if (_WIDE_BRACES if braces else _WIDE_PERCENT).search(pattern):
        raise RenderLimit("a format asked for a width or precision of 10,000 or more")


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, with every call, filter, loop turn and size-making operator
    counted against the render's budget."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        budget = _step()
        sized = (str, list, tuple)
        if operator == "*" and isinstance(left, int) and isinstance(right, sized):
            left, right = right, left
        if operator == "*" and isinstance(left, sized) and isinstance(right, int):
            _check_size(len(left) * right, budget, "a repetition")
        elif operator == "+" and isinstance(left, sized) and isinstance(right, sized):
            _check_size(len(left) + len(right), budget, "a concatenation")
        elif operator == "**" and isinstance(left, int) and isinstance(right, int) and abs(left) > 1:
            _check_size(left.bit_length() * right // 64, budget, "a power")
        elif operator == "%" and isinstance(left, str):
            _check_format(left)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        budget = _step()
        _check_arguments(args, kwargs, budget)
        wrapped = getattr(__obj, "__wrapped__", None)  # the sandbox's wrapper of str.format
        if getattr(wrapped, "__name__", "") in ("format", "format_map") and isinstance(
                getattr(wrapped, "__self__", None), str):
            _check_format(wrapped.__self__, braces=True)
        return super().call(__context, __obj, *args, **kwargs)


def _check_arguments(args: tuple[Any, ...], kwargs: dict[str, Any], budget: _Budget | None) -> None:
    """A count or a width argument that could only make a runaway: larger than render_chars."""
    for value in (*args, *kwargs.values()):
        if isinstance(value, int) and not isinstance(value, bool):
            _check_size(abs(value), budget, "an argument")


def bounded_filter(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` as a filter that counts a step and refuses runaway arguments (``center(10**9)``);
    the value it filters may be any size."""
    skip = 2 if _PassArg.from_obj(function) is not None else 1

    @functools.wraps(function)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        budget = _step()
        _check_arguments(args[skip:], kwargs, budget)
        if function.__name__ == "do_format" and len(args) >= skip and isinstance(args[skip - 1], str):
            _check_format(args[skip - 1])
        return function(*args, **kwargs)

    return bounded


def _loop(iterable: Any) -> Any:
    for item in iterable:
        _step()
        yield item


def install(env: BoundedSandbox) -> None:
    """Count every filter of ``env``, and give it the loop filter that :func:`bound_loops` uses."""
    for name, function in list(env.filters.items()):
        env.filters[name] = bounded_filter(function)
    env.filters[LOOP_FILTER] = _loop
    lipsum = env.globals.get("lipsum")
    if callable(lipsum):  # paragraphs of filler made in one call: a few at most
        env.globals["lipsum"] = _few_paragraphs(lipsum)


def _few_paragraphs(lipsum: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(lipsum)
    def few(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> Any:
        if not (isinstance(n, int) and isinstance(min, int) and isinstance(max, int)) or n > 20 or max > 200:
            raise RenderLimit("asked lipsum for more than 20 paragraphs of 200 words")
        return lipsum(n, html, min, max)

    return few


def bound_loops(tree: nodes.Template) -> nodes.Template:
    """Every ``{% for %}`` of ``tree`` iterates through the loop filter: each turn is a step."""
    for loop in tree.find_all(nodes.For):
        loop.iter = nodes.Filter(loop.iter, LOOP_FILTER, [], [], None, None, lineno=loop.lineno)
    return tree


def render(template: Template, values: dict[str, Any], bounds: RenderBounds) -> str:
    """``template`` rendered within ``bounds``; RenderLimit when it goes past one of them."""
    token = _BUDGET.set(_Budget(bounds))
    try:
        parts: list[str] = []
        size = 0
        for chunk in template.generate(values):
            size += len(chunk)
            if size > bounds.chars:
                raise RenderLimit(f"made more than {bounds.chars:,} characters (render_chars)")
            parts.append(chunk)
            _step()
        return "".join(parts)
    finally:
        _BUDGET.reset(token)
