"""The sandbox's deadline holds against filters that no deadline can interrupt once called: ``uniq``
(quadratic) is bounded in its input, and the clock is read before every filter call."""

from __future__ import annotations

import time

from experiments.content import try_render
from experiments.sandbox import DEFAULT_LIMITS, QUADRATIC_FILTER_ITEMS

DISTINCT = "".join(chr(0x4E00 + i) for i in range(4_000))  # 4,000 distinct characters


def test_uniq_over_a_long_split_is_refused_at_once() -> None:
    start = time.perf_counter()
    rendering = try_render('{{ s | split: "" | uniq | size }}', {"s": DISTINCT})
    elapsed = time.perf_counter() - start
    bound = QUADRATIC_FILTER_ITEMS["uniq"]
    assert rendering.text is None
    assert str(rendering.problem) == (
        f"value size limit reached: filter 'uniq' takes at most {bound} items, got 4000")
    assert elapsed < DEFAULT_LIMITS.seconds / 5


def test_uniq_within_its_bound_still_works() -> None:
    rendering = try_render('{{ s | split: "" | uniq | size }}', {"s": DISTINCT[:1_000]})
    assert rendering.text == "1000"
    rendering = try_render('{{ "b,a,b,c,a" | split: "," | uniq | join: "," }}', {})
    assert rendering.text == "b,a,c"


def test_many_uniq_calls_within_the_bound_meet_the_deadline() -> None:
    source = '{% assign xs = s | split: "" %}' + "{% assign ys = xs | uniq %}" * 200 + "{{ ys | size }}"
    start = time.perf_counter()
    rendering = try_render(source, {"s": DISTINCT[:1_000]})
    elapsed = time.perf_counter() - start
    assert rendering.text is None and "limit reached" in str(rendering.problem)
    assert elapsed < DEFAULT_LIMITS.seconds * 1.5
