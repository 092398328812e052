"""The sandbox's deadline holds against filters that no deadline can interrupt once called: ``uniq``
(quadratic) is bounded in its input, and the clock is read before every filter call.

The clock is simulated (no wall-clock bound is asserted): each reading of it advances it by a fixed
step, so how many filter calls run before the deadline depends only on how often the sandbox reads it.
"""

from __future__ import annotations

from typing import Any

import pytest

from experiments import sandbox
from experiments.content import try_render
from experiments.sandbox import DEFAULT_LIMITS, QUADRATIC_FILTER_ITEMS, Meter

DISTINCT = "".join(chr(0x4E00 + i) for i in range(4_000))  # 4,000 distinct characters


def test_uniq_over_a_long_split_is_refused_at_once() -> None:
    # refused by the size check before the filter runs, not stopped by the deadline after it
    rendering = try_render('{{ s | split: "" | uniq | size }}', {"s": DISTINCT})
    bound = QUADRATIC_FILTER_ITEMS["uniq"]
    assert rendering.text is None
    assert str(rendering.problem) == (
        f"value size limit reached: filter 'uniq' takes at most {bound} items, got 4000")


def test_uniq_within_its_bound_still_works() -> None:
    rendering = try_render('{{ s | split: "" | uniq | size }}', {"s": DISTINCT[:1_000]})
    assert rendering.text == "1000"
    rendering = try_render('{{ "b,a,b,c,a" | split: "," | uniq | join: "," }}', {})
    assert rendering.text == "b,a,c"


class _SteppedClock:
    """``time`` for the sandbox: every reading of ``monotonic`` is ``step`` seconds after the last."""

    def __init__(self, step: float) -> None:
        self.step = step
        self.now = 0.0

    def monotonic(self) -> float:
        now = self.now
        self.now += self.step
        return now


def test_many_uniq_calls_within_the_bound_meet_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    step = DEFAULT_LIMITS.seconds / 5  # the deadline passes at the sixth reading after the start
    monkeypatch.setattr(sandbox, "time", _SteppedClock(step))
    calls: list[str] = []
    checked = Meter.before_filter

    def counted(self: Meter, name: str, *args: Any) -> None:
        checked(self, name, *args)
        calls.append(name)  # the call passed its checks and runs

    monkeypatch.setattr(Meter, "before_filter", counted)
    source = '{% assign xs = s | split: "" %}' + "{% assign ys = xs | uniq %}" * 200 + "{{ ys | size }}"
    rendering = try_render(source, {"s": DISTINCT[:1_000]})
    assert rendering.text is None and "time limit reached" in str(rendering.problem)
    # one reading starts the rendering; each filter call reads the clock first, so at most five run
    # (reading it every few steps instead would let a dozen or more through)
    assert 1 <= len(calls) <= 5
