"""Prometheus text-format metrics, written by hand: counters, one latency histogram, a gauge per worker.

With several worker processes (``sendlab serve --workers N``) each worker also writes its values into
its own file of a shared directory (``SENDLAB_METRICS_DIR``, set up by ``sendlab serve``; see
:mod:`api.metrics_files`), and whichever worker answers ``/metrics`` sums every worker's counters and
histograms, so one scrape counts the requests of all of them. A worker that exited still counts (its
totals happened); gauges are per live worker, labelled with its ``pid``.
"""

from __future__ import annotations

import bisect
import json
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from api.metrics_files import WorkerFile, file_pid, is_alive, read_file, worker_files

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

    def observe(self, value: float, **labels: str) -> list[int]:
        """Record one observation; ``series`` holds per-bucket counts, then the sum and the count.

        Returns the positions of the row that changed (the bucket, if any, the sum and the count).
        """
        key = tuple((n, str(labels[n])) for n in self.label_names)
        n = len(self.buckets)
        row = self.series.setdefault(key, [0.0] * (n + 2))
        index = bisect.bisect_left(self.buckets, value)  # first bound >= value, Prometheus' "le"
        if index < n:
            row[index] += 1
        row[-2] += value
        row[-1] += 1
        return ([index] if index < n else []) + [n, n + 1]

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


@dataclass
class Gauge:
    """A value that goes up and down, one per label set."""

    name: str
    help: str
    values: dict[Labels, float] = field(default_factory=dict)

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} gauge"]
        for labels, value in sorted(self.values.items()):
            lines.append(f"{self.name}{_format_labels(labels)} {_format_number(value)}")
        return lines


def _families() -> tuple[Counter, Counter, Counter, Counter, Histogram]:
    """Fresh, empty instances of the service's summed metrics, in exposition order."""
    return (
        Counter("sendlab_decisions_total", "Assignment decisions made and logged.", ("experiment",)),
        Counter("sendlab_outcomes_total", "Outcome events received, by result.", ("result",)),
        Counter(
            "sendlab_http_requests_total", "HTTP requests answered, by route and status.", ("route", "status")
        ),
        Counter("sendlab_http_errors_total", "HTTP answers with status >= 400, by status.", ("status",)),
        Histogram("sendlab_http_request_duration_seconds", "Time to answer an HTTP request.", ("route",)),
    )


START_TIME = "sendlab_process_start_time_seconds"


def _start_time_gauge() -> Gauge:
    return Gauge(START_TIME, "When each live worker process started, in Unix seconds (one series per pid).")


@lru_cache(maxsize=8192)
def _key(name: str, labels: Labels, index: int | None = None) -> str:
    """A value's key in a worker file: the metric, its labels and, for a histogram, the row position.

    Cached: every request updates a handful of the same few keys."""
    return json.dumps([name, [list(pair) for pair in labels], index], separators=(",", ":"))


class ServiceMetrics:
    """The service's metrics: decisions, outcomes by result, errors by status, request latency.

    Parameters
    ----------
    directory : path, optional
        The directory shared by the worker processes of one server. With it, every update is also
        written to this process's file there, and :meth:`render` sums the files of every worker.
        Without it (one process, tests), the metrics are this process's own.
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self._lock = threading.Lock()
        self.decisions, self.outcomes, self.requests, self.errors, self.latency = _families()
        self.directory = None if directory is None else Path(directory)
        self._file = None if self.directory is None else WorkerFile(self.directory)
        self.started = time.time()
        if self._file is not None:
            self._file.set(_key(START_TIME, ()), self.started)

    def _publish(self, counter: Counter, labels: Labels) -> None:
        if self._file is not None:
            self._file.set(_key(counter.name, labels), counter.values[labels])

    def _publish_row(self, histogram: Histogram, labels: Labels, positions: Sequence[int]) -> None:
        if self._file is not None:
            row = histogram.series[labels]
            for j in positions:
                self._file.set(_key(histogram.name, labels, j), row[j])

    def count_decisions(self, experiment: str, n: int) -> None:
        with self._lock:
            self.decisions.inc(n, experiment=experiment)
            self._publish(self.decisions, (("experiment", str(experiment)),))

    def count_outcomes(self, accepted: int, duplicates: int, orphans: int, erased: int = 0) -> None:
        with self._lock:
            counted = (("accepted", accepted), ("duplicate", duplicates), ("orphan", orphans),
                       ("erased", erased))
            for result, n in counted:
                self.outcomes.inc(n, result=result)
                self._publish(self.outcomes, (("result", result),))

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests.inc(route=route, status=str(status))
            self._publish(self.requests, (("route", str(route)), ("status", str(status))))
            if status >= 400:
                self.errors.inc(status=str(status))
                self._publish(self.errors, (("status", str(status)),))
            positions = self.latency.observe(seconds, route=route)
            self._publish_row(self.latency, (("route", str(route)),), positions)

    def render(self) -> str:
        """The exposition text (format 0.0.4): this process's metrics, or every worker's summed."""
        if self.directory is not None:
            return _render_lines(*merge_worker_files(self.directory))
        with self._lock:
            gauge = _start_time_gauge()
            gauge.values[(("pid", str(os.getpid())),)] = self.started
            return _render_lines((self.decisions, self.outcomes, self.requests, self.errors, self.latency),
                                 gauge)


def _render_lines(families: Sequence[Counter | Histogram], gauge: Gauge) -> str:
    lines: list[str] = []
    for metric in (*families, gauge):
        lines += metric.render()
    return "\n".join(lines) + "\n"


def merge_worker_files(directory: str | os.PathLike[str]) -> tuple[tuple[Counter | Histogram, ...], Gauge]:
    """Every worker's counters and histograms summed, and the start time of each live worker.

    Returns
    -------
    families : tuple
        The summed metrics, as :class:`Counter` / :class:`Histogram` objects.
    gauge : Gauge
        ``sendlab_process_start_time_seconds`` per live worker, labelled ``pid``.
    """
    families = _families()
    name_to_family: dict[str, Counter | Histogram] = {f.name: f for f in families}
    gauge = _start_time_gauge()
    for path in worker_files(directory):
        pid = file_pid(path)
        for key, value in read_file(path).items():
            name, pairs, index = json.loads(key)
            labels: Labels = tuple((str(k), str(v)) for k, v in pairs)
            if name == START_TIME:
                if pid is not None and is_alive(pid):
                    gauge.values[labels + (("pid", str(pid)),)] = value
                continue
            family = name_to_family.get(name)
            if isinstance(family, Counter):
                family.values[labels] = family.values.get(labels, 0.0) + value
            elif isinstance(family, Histogram) and isinstance(index, int):
                row = family.series.setdefault(labels, [0.0] * (len(family.buckets) + 2))
                row[index] += value
    return families, gauge


def drift_gauge(experiment_to_alert: dict[str, bool]) -> str:
    """``sendlab_drift_alert{experiment=...}``: 1 when the experiment's drift monitor has raised the alert
    (:mod:`experiments.drift_block`), else 0; read from the database at each scrape."""
    gauge = Gauge("sendlab_drift_alert", "1 if the experiment's drift monitor raised the alert, else 0")
    for key, alert in experiment_to_alert.items():
        gauge.values[(("experiment", key),)] = 1.0 if alert else 0.0
    return "\n".join(gauge.render()) + "\n"
