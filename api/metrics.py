"""Prometheus text-format metrics, written by hand: counters and one latency histogram.

The registry is per process: with several workers each exports its own series (Prometheus sums them
when scraped per worker, or put the service behind one worker per scrape target).
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

LATENCY_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)

Labels = tuple[tuple[str, str], ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _format_labels(labels: Labels, extra: Labels = ()) -> str:
    items = labels + extra
    if not items:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in items) + "}"


def _format_number(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


@dataclass
class Counter:
    """A monotonically increasing count per label set."""

    name: str
    help: str
    label_names: tuple[str, ...] = ()
    values: dict[Labels, float] = field(default_factory=dict)

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        """Add ``amount`` (>= 0) to the series named by ``labels``."""
        if amount < 0:
            raise ValueError(f"amount: a counter only increases, got {amount}")
        key = tuple((n, str(labels[n])) for n in self.label_names)
        self.values[key] = self.values.get(key, 0.0) + amount

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        for labels, value in sorted(self.values.items()):
            lines.append(f"{self.name}{_format_labels(labels)} {_format_number(value)}")
        return lines


@dataclass
class Histogram:
    """Observations counted in cumulative ``le`` buckets, with their sum and count."""

    name: str
    help: str
    label_names: tuple[str, ...] = ()
    buckets: Sequence[float] = LATENCY_BUCKETS
    series: dict[Labels, list[float]] = field(default_factory=dict)

    def observe(self, value: float, **labels: str) -> None:
        """Record one observation; ``series`` holds per-bucket counts, then the sum and the count."""
        key = tuple((n, str(labels[n])) for n in self.label_names)
        row = self.series.setdefault(key, [0.0] * (len(self.buckets) + 2))
        index = bisect.bisect_left(self.buckets, value)  # first bound >= value, Prometheus' "le"
        if index < len(self.buckets):
            row[index] += 1
        row[-2] += value
        row[-1] += 1

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        for labels, row in sorted(self.series.items()):
            cumulative = 0.0
            for bound, count in zip(self.buckets, row, strict=False):
                cumulative += count
                le = (("le", _format_number(bound)),)
                lines.append(f"{self.name}_bucket{_format_labels(labels, le)} {_format_number(cumulative)}")
            inf = (("le", "+Inf"),)
            lines.append(f"{self.name}_bucket{_format_labels(labels, inf)} {_format_number(row[-1])}")
            lines.append(f"{self.name}_sum{_format_labels(labels)} {_format_number(row[-2])}")
            lines.append(f"{self.name}_count{_format_labels(labels)} {_format_number(row[-1])}")
        return lines


class ServiceMetrics:
    """The service's metrics: decisions, outcomes by result, errors by status, request latency."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.decisions = Counter(
            "sendlab_decisions_total", "Assignment decisions made and logged.", ("experiment",)
        )
        self.outcomes = Counter(
            "sendlab_outcomes_total", "Outcome events received, by result.", ("result",)
        )
        self.requests = Counter(
            "sendlab_http_requests_total", "HTTP requests answered, by route and status.", ("route", "status")
        )
        self.errors = Counter(
            "sendlab_http_errors_total", "HTTP answers with status >= 400, by status.", ("status",)
        )
        self.latency = Histogram(
            "sendlab_http_request_duration_seconds", "Time to answer an HTTP request.", ("route",)
        )

    def count_decisions(self, experiment: str, n: int) -> None:
        with self._lock:
            self.decisions.inc(n, experiment=experiment)

    def count_outcomes(self, accepted: int, duplicates: int, orphans: int) -> None:
        with self._lock:
            for result, n in (("accepted", accepted), ("duplicate", duplicates), ("orphan", orphans)):
                self.outcomes.inc(n, result=result)

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests.inc(route=route, status=str(status))
            if status >= 400:
                self.errors.inc(status=str(status))
            self.latency.observe(seconds, route=route)

    def render(self) -> str:
        """The exposition text (format 0.0.4)."""
        with self._lock:
            lines: list[str] = []
            for metric in (self.decisions, self.outcomes, self.requests, self.errors, self.latency):
                lines += metric.render()
        return "\n".join(lines) + "\n"
