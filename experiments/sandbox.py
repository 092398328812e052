"""The sandbox Liquid templates render in: no file access, and bounded in time and work.

python-liquid bounds loops (per nesting), output length and the local namespace; that alone lets a short
template run for tens of seconds (a string doubled by ``append`` and then split, sorted and joined in a
loop). A rendering here is metered as it runs, by a render context of our own
(:class:`BoundedContext`), against :class:`RenderLimits`:

- ``loop_iterations``: iterations of all loops together (nested loops multiply, sequential ones add);
- ``steps``: template nodes rendered (every tag, output and text node, each time it runs) and filter
  calls;
- ``value_size``: characters (or items) of any value a filter or ``assign`` produces and of a filter
  call's inputs together (a range literal included), checked before the filter runs, and for the
  filters that multiply their input (``replace`` with a long replacement, ``join`` with a long
  separator) of the output they would make;
- ``filter_work``: characters (or items) that all filter calls together read and write;
- ``output``: characters of output;
- ``seconds``: a wall-clock deadline, read every :data:`CLOCK_EVERY` steps and before every loop.

The first five are deterministic: a template that exceeds one fails the same way on every machine, and
so is cached and reported as such. The deadline is the backstop for whatever the counts miss; a
rendering stopped by it is not cached (it may be the machine that was slow). Every limit raises a
:class:`RenderLimitError`, one of python-liquid's ``ResourceLimitError``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from liquid import BoundTemplate, Environment
from liquid.context import RenderContext
from liquid.exceptions import ResourceLimitError
from liquid.output import LimitedStringIO

#: The largest magnitude of an integer a filter may produce (``times`` in a loop grows digits fast).
MAX_INTEGER_BITS = 64


@dataclass(frozen=True)
class RenderLimits:
    """The bounds of one rendering (see the module docstring); ``seconds=None`` leaves out the deadline."""

    loop_iterations: int = 1_000
    steps: int = 5_000
    value_size: int = 10_000
    filter_work: int = 200_000
    output: int = 10_000
    seconds: float | None = 0.5


#: The bounds every rendering uses unless told otherwise.
DEFAULT_LIMITS = RenderLimits()


class RenderLimitError(ResourceLimitError):
    """A rendering reached one of its bounds; the message names the bound."""


class RenderDeadlineError(RenderLimitError):
    """A rendering ran past its wall-clock deadline (not a property of the template alone)."""


def _limit(message: str) -> RenderLimitError:
    return RenderLimitError(message, token=None)


def value_size(value: object, cap: int) -> int:
    """The size of a template value: characters of strings, items of lists, ranges and dicts.

    Nested values add up (an item counts 1 plus its own size; a dict's keys count as items). Counting
    stops once it passes ``cap``, so measuring costs at most ``cap`` steps whatever the value.

    Examples
    --------
    >>> value_size("abc", 100), value_size(["ab", "c"], 100), value_size(range(10**9), 100) > 100
    (3, 5, True)
    """
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, range):
            total += len(item)
        elif isinstance(item, dict):  # plain data only: drops and undefined values count as 1
            total += len(item)
            if total <= cap:
                stack.extend(item.keys())
                stack.extend(item.values())
        elif isinstance(item, list | tuple):
            total += len(item)
            if total <= cap:
                stack.extend(item)
        else:
            total += 1
        if total > cap:
            return total
    return total


_MULTIPLYING = frozenset({"replace", "join"})

#: Filters whose work grows with the square of their input (``uniq`` compares every item with every
#: earlier one, as items may be unhashable): the most items each may be given, so that one call, which
#: no deadline can interrupt, stays within milliseconds.
QUADRATIC_FILTER_ITEMS: dict[str, int] = {"uniq": 1_000}


def _multiplied_size(name: str, left: object, args: tuple[Any, ...]) -> int:
    """For the filters whose output can be far larger than their inputs, that output's size (exact for
    ``replace``, a bound for ``join``); 0 for the others, whose output is a small multiple of the input."""
    if name == "replace" and isinstance(left, str) and len(args) >= 2:
        old, new = str(args[0]), str(args[1])
        count = left.count(old) if old else len(left) + 1
        return len(left) + count * max(len(new) - len(old), 0)
    if name == "join" and isinstance(left, list | tuple | range):
        separator = str(args[0]) if args else " "
        return max(len(left) - 1, 0) * len(separator)
    return 0


#: The deadline is read every this many steps (a step costs microseconds, so it is read every few).
CLOCK_EVERY = 16
_SCALARS = (int, float, bool, type(None))


def _size_of(value: object, cap: int) -> int:
    """:func:`value_size`, with the common scalar and string cases first."""
    kind = type(value)
    if kind is str:
        return len(value)  # type: ignore[arg-type]
    if kind in _SCALARS:
        return 1
    return value_size(value, cap)


class Meter:
    """The running counts of one rendering against its :class:`RenderLimits`."""

    __slots__ = ("cap", "deadline", "iterations", "limits", "max_steps", "max_work", "steps", "work")

    def __init__(self, limits: RenderLimits = DEFAULT_LIMITS) -> None:
        self.limits = limits
        self.deadline = None if limits.seconds is None else time.monotonic() + limits.seconds
        self.cap = limits.value_size
        self.max_steps = limits.steps
        self.max_work = limits.filter_work
        self.steps = 0
        self.iterations = 0
        self.work = 0

    def check_time(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise RenderDeadlineError(f"time limit reached: over {self.limits.seconds:g} s", token=None)

    def step(self) -> None:
        """One template node rendered or one filter called; the clock is read every few steps."""
        self.steps += 1
        if self.steps > self.max_steps:
            raise _limit(f"step limit reached: over {self.max_steps} nodes rendered and filters called")
        if not self.steps % CLOCK_EVERY:
            self.check_time()

    def loop(self, length: int) -> None:
        """A loop of ``length`` iterations is about to run."""
        self.check_time()
        self.iterations += length
        if self.iterations > self.limits.loop_iterations:
            raise _limit(f"loop iteration limit reached: over {self.limits.loop_iterations} in all loops")

    def check_value(self, what: str, value: object) -> int:
        """Raise if ``value`` is larger than a value may be; its size otherwise."""
        if type(value) is int and value.bit_length() > MAX_INTEGER_BITS:  # type: ignore[attr-defined]
            raise _limit(f"value size limit reached: {what} made a number over {MAX_INTEGER_BITS} bits")
        size = _size_of(value, self.cap)
        if size > self.cap:
            raise _limit(f"value size limit reached: {what} made over {self.cap} characters or items")
        return size

    def before_filter(
        self, name: str, left: object, args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> None:
        """Check a filter call's inputs (and the output of those that multiply them) and count the work.

        The clock is read before every call: a filter, once called, runs to its end."""
        self.step()
        self.check_time()
        cap = self.cap
        size = _size_of(left, cap)
        items = QUADRATIC_FILTER_ITEMS.get(name)
        if items is not None and isinstance(left, list | tuple) and len(left) > items:
            reason = f"filter {name!r} takes at most {items} items, got {len(left)}"
            raise _limit(f"value size limit reached: {reason}")
        for value in (*args, *kwargs.values()) if args or kwargs else ():
            size += _size_of(value, cap) if size <= cap else 0
        if size > cap:
            raise _limit(f"value size limit reached: filter {name!r} was given over {cap} characters")
        if name in _MULTIPLYING and _multiplied_size(name, left, args) > cap:
            raise _limit(f"value size limit reached: filter {name!r} would make over {cap} characters")
        self.charge(name, size)

    def after_filter(self, name: str, result: object) -> None:
        self.charge(name, self.check_value(f"filter {name!r}", result))

    def charge(self, name: str, size: int) -> None:
        self.work += size
        if self.work > self.max_work:
            raise RenderLimitError(
                f"filter work limit reached: filters handled over {self.max_work} "
                f"characters or items in all (at {name!r})",
                token=None,
            )


class BoundedContext(RenderContext):
    """A render context that meters its rendering (a fresh :class:`Meter` unless one is given).

    The hooks: ``filter`` wraps every filter call; ``assign`` (also behind ``capture``) checks the value;
    ``loop`` counts iterations; and every node's ``render`` reads
    ``disabled_tags`` once before it runs (python-liquid's ``Node.render``), which is where a step is
    counted. ``tests/experiments/test_content.py`` renders a template of nothing but tags in a loop and
    expects the step limit, so a python-liquid that stops reading it there fails that test.
    """

    __slots__ = ("_disabled", "meter")

    def __init__(
        self, template: BoundTemplate, *args: Any, meter: Meter | None = None, **kwargs: Any
    ) -> None:
        self.meter = meter if meter is not None else Meter()
        super().__init__(template, *args, **kwargs)

    @property  # type: ignore[override]
    def disabled_tags(self) -> list[str]:
        self.meter.step()  # python-liquid reads this once per node rendered
        return self._disabled

    @disabled_tags.setter
    def disabled_tags(self, value: list[str]) -> None:
        self._disabled = value

    def filter(self, name: str, token: Any) -> Any:  # noqa: A003 - python-liquid's name
        func = super().filter(name, token)
        meter = self.meter

        def bounded(left: object, *args: Any, **kwargs: Any) -> object:
            meter.before_filter(name, left, args, kwargs)
            result = func(left, *args, **kwargs)
            meter.after_filter(name, result)
            return result

        return bounded

    def assign(self, key: str, val: Any) -> None:
        self.meter.check_value(f"assign {key!r}", val)
        super().assign(key, val)

    def loop(self, namespace: Mapping[str, object], forloop: Any) -> AbstractContextManager[RenderContext]:
        self.meter.loop(int(forloop.length))
        return super().loop(namespace, forloop)

    def copy(self, *args: Any, **kwargs: Any) -> RenderContext:
        ctx = super().copy(*args, **kwargs)
        if isinstance(ctx, BoundedContext):
            ctx.meter = self.meter  # one budget for the whole rendering
        return ctx


class BoundedTemplate(BoundTemplate):
    """A template whose renderings are metered with the default limits."""

    context_class = BoundedContext


class SandboxEnvironment(Environment):
    """No ``include`` or ``render`` (they read other templates: files, loaders); bounded renderings."""

    template_class = BoundedTemplate
    loop_iteration_limit = DEFAULT_LIMITS.loop_iterations
    output_stream_limit = DEFAULT_LIMITS.output
    local_namespace_limit = 100_000
    context_depth_limit = 10
    block_nesting_limit = 20

    def setup_tags_and_filters(self, *, extra: bool = False) -> None:
        super().setup_tags_and_filters(extra=False)
        for name in ("include", "render"):
            self.tags.pop(name, None)


def render_bounded(template: BoundTemplate, values: Mapping[str, Any], limits: RenderLimits) -> str:
    """Render a parsed template with ``values`` under ``limits``.

    Raises
    ------
    liquid.exceptions.LiquidError
        :class:`RenderLimitError` for a bound reached, other Liquid errors as python-liquid raises them.
    """
    context = BoundedContext(template, globals=template.make_globals(dict(values)), meter=Meter(limits))
    buffer = LimitedStringIO(limit=limits.output)
    template.render_with_context(context, buffer)
    return buffer.getvalue()

