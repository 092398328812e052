"""The hand-written Prometheus exposition."""

from __future__ import annotations

import re

import numpy as np
import pytest

from api.metrics import LATENCY_BUCKETS, Counter, ServiceMetrics


def parse_exposition(text: str) -> dict[str, float]:
    """``name{labels}`` -> value for every sample line (comments skipped)."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, value = line.rsplit(" ", 1)
        samples[name] = float(value.replace("+Inf", "inf"))
    return samples


def test_counters_by_label_and_help_lines():
    metrics = ServiceMetrics()
    metrics.count_decisions("spring", 3)
    metrics.count_decisions("spring", 2)
    metrics.count_outcomes(accepted=5, duplicates=1, orphans=0)
    metrics.observe_request("/v1/outcomes", 422, 0.002)
    text = metrics.render()
    samples = parse_exposition(text)
    assert samples['sendlab_decisions_total{experiment="spring"}'] == 5
    assert samples['sendlab_outcomes_total{result="accepted"}'] == 5
    assert samples['sendlab_outcomes_total{result="duplicate"}'] == 1
    assert samples['sendlab_outcomes_total{result="orphan"}'] == 0
    assert samples['sendlab_http_errors_total{status="422"}'] == 1
    assert "# TYPE sendlab_decisions_total counter" in text
    assert "# TYPE sendlab_http_request_duration_seconds histogram" in text


def test_histogram_buckets_are_cumulative_counts_of_le():
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.exponential(0.05, 500), [0.005, 0.01, 20.0]])  # bounds and overflow
    metrics = ServiceMetrics()
    for v in values:
        metrics.observe_request("/healthz", 200, float(v))
    samples = parse_exposition(metrics.render())
    for bound in LATENCY_BUCKETS:
        key = f'sendlab_http_request_duration_seconds_bucket{{route="/healthz",le="{bound:g}"}}'
        key = key if key in samples else key.replace(f'le="{bound:g}"', f'le="{int(bound)}"')
        assert samples[key] == np.sum(values <= bound), bound
    assert samples['sendlab_http_request_duration_seconds_bucket{route="/healthz",le="+Inf"}'] == len(values)
    assert samples['sendlab_http_request_duration_seconds_count{route="/healthz"}'] == len(values)
    total = samples['sendlab_http_request_duration_seconds_sum{route="/healthz"}']
    assert total == pytest.approx(values.sum())


def test_label_values_are_escaped():
    counter = Counter("x_total", "help", ("name",))
    counter.inc(name='a"b\\c\nd')
    line = counter.render()[-1]
    assert line == 'x_total{name="a\\"b\\\\c\\nd"} 1'
    assert re.fullmatch(r'x_total\{name="(?:[^"\\]|\\.)*"\} 1', line)


def test_counters_never_decrease():
    with pytest.raises(ValueError, match="amount"):
        Counter("x_total", "help").inc(-1)
