"""What the template sandbox costs per rendering, and how fast it stops malicious templates.

Per recipient (distinct first names, so nothing is served from the rendering cache): python-liquid's
own ``Environment`` without any meter, beside the sandbox's metered rendering
(``experiments.sandbox.render_bounded``) and ``experiments.content.try_render`` (field bounds, cache key
and the metered rendering). Then the time until the sandbox refuses each malicious template, with the
limit that stopped it.

Run: ``python -m benchmarks.content [--n 3000]``
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from liquid import Environment

from benchmarks.report import format_table, write_section
from experiments.content import _parse, _render_cached, try_render
from experiments.sandbox import DEFAULT_LIMITS, render_bounded

TEMPLATES = {
    "greeting": "{{ first_name | default: 'there' }}, your spring picks",
    "vip block": (
        "{% if segment == 'vip' %}Early access for you, {{ first_name | default: 'friend' }}"
        "{% else %}Spring sale: 20% off{% endif %}"
    ),
    "20-row loop": (
        "{% for i in (1..20) %}{{ i }}. {{ first_name | upcase }} {{ segment | append: '!' }}\n{% endfor %}"
    ),
}
SORT_LOOP = "{% for i in (1..1000) %}{% assign t = s | split:'' | sort | join:'' %}{% endfor %}{{ t | size }}"
MALICIOUS = {
    "audit (a): 12 appends, then split/sort/join x 1000 (21.8 s unbounded)": (
        "{% assign s='abcdefghij' %}" + "{% assign s = s | append: s %}" * 12 + SORT_LOOP, {}
    ),
    "audit (b): the loop over a 50,000-character field (40.7 s unbounded)": (SORT_LOOP, {"s": "x" * 50_000}),
    "the loop over a 3,000-character field": (SORT_LOOP, {"s": "qwertyuiop" * 300}),
    "1000 x 50 if-tags, no filter": (
        "{% for i in (1..1000) %}" + "{% if i == 2 %}{% endif %}" * 50 + "{% endfor %}x", {}
    ),
    "1000 x 100 cheap filters": (
        "{% for i in (1..1000) %}{% assign t = 'ab'" + " | upcase | downcase" * 50 + " %}{% endfor %}x", {}
    ),
    "nested loops 1000 x 1000": (
        "{% for i in (1..1000) %}{% for j in (1..1000) %}x{% endfor %}{% endfor %}", {}
    ),
    "a range of 10^8 joined": ("{{ (1..100000000) | join: ',' }}", {}),
}


def _per_render_us(render: Callable[[int], object], n: int, repeats: int = 3) -> float:
    """Median over ``repeats`` of the mean microseconds of ``n`` renderings."""
    times = []
    for r in range(repeats):
        start = time.perf_counter()
        for i in range(n):
            render(i + r * n)
        times.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000, help="renderings per template and path")
    args = parser.parse_args()
    rows = []
    for name, source in TEMPLATES.items():
        plain = Environment().from_string(source)
        bounded = _parse(source)

        def context(i: int) -> dict[str, str]:
            return {"first_name": f"name{i}", "segment": "vip" if i % 2 else "new"}

        unmetered = _per_render_us(lambda i, t=plain: t.render(**context(i)), args.n)
        metered = _per_render_us(lambda i, t=bounded: render_bounded(t, context(i), DEFAULT_LIMITS), args.n)
        tried = _per_render_us(lambda i, s=source: try_render(s, context(i)), args.n)
        rows.append([name, unmetered, metered, tried, metered / unmetered])
    table = format_table(
        ["template", "python-liquid us", "sandbox us", "try_render us", "sandbox / python-liquid"], rows
    )
    refused = []
    for name, (source, ctx) in MALICIOUS.items():
        try_render(source, {})  # parse once (the parse is cached, as at assignment) ...
        _render_cached.cache_clear()  # ... but not the rendering
        start = time.perf_counter()
        rendering = try_render(source, ctx)
        elapsed = (time.perf_counter() - start) * 1e3
        problem = str(rendering.problem).split(":")[0] if rendering.problem else "rendered"
        refused.append([name, elapsed, problem])
    table += "\n\n" + format_table(["malicious template", "ms to refuse", "stopped by"], refused)
    notes = (
        "Per rendering: median of 3 runs of --n renderings with distinct first names (no cache hits). "
        "The refusal times are one rendering each (parsed before, not cached); the unbounded times are "
        "the audit's, measured before the sandbox metered renderings. Shared 2-core machine: compare "
        "ratios."
    )
    title = "Template rendering: the sandbox's cost and its refusals"
    write_section("content", title, f"python -m benchmarks.content --n {args.n}", table, notes)


if __name__ == "__main__":
    main()
