"""The per-version chart's points: one per policy version, or per run of consecutive versions when there
are more than a chart draws, each run's shares over its decisions together."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from api.ui.views import version_shares
from experiments.models import VersionAllocation

START = datetime(2026, 3, 1, tzinfo=UTC)


def _versions(counts: list[tuple[int, int, int]]) -> list[VersionAllocation]:
    """A version per (plain, urgent, explored) count, versions 1, 2, ... stored an hour apart."""
    return [VersionAllocation(i + 1, START + timedelta(hours=i), plain + urgent, explored, 0,
                              {"subject": {"plain": plain, "urgent": urgent}})
            for i, (plain, urgent, explored) in enumerate(counts)]


COUNTS = [(10, 30, 4), (20, 20, 8), (5, 95, 10), (50, 50, 0), (1, 9, 1)]


def test_a_point_per_version_when_they_fit() -> None:
    points = version_shares(_versions(COUNTS), "subject", points=10)
    assert [p.version for p in points] == [p.first for p in points] == [1, 2, 3, 4, 5]
    for p, (plain, urgent, explored) in zip(points, COUNTS, strict=True):
        assert p.variant_to_share == {"plain": plain / (plain + urgent), "urgent": urgent / (plain + urgent)}
        assert p.explored_share == explored / (plain + urgent) and p.decisions == plain + urgent


def test_runs_of_consecutive_versions_sum_their_decisions() -> None:
    versions = [VersionAllocation(None, None, 7, 0, 0, {}), *_versions(COUNTS)]  # no policy version: left out
    points = version_shares(versions, "subject", points=2)
    assert [(p.first, p.version) for p in points] == [(1, 2), (3, 5)]
    first, second = points
    assert first.decisions == 80 and first.variant_to_share == {"plain": 30 / 80, "urgent": 50 / 80}
    assert first.explored_share == pytest.approx(12 / 80)
    assert second.decisions == 210 and second.variant_to_share["urgent"] == pytest.approx(154 / 210)
    assert second.created_at == START + timedelta(hours=4)  # when the run's last version was stored


def test_thousands_of_versions_draw_at_most_the_history_points() -> None:
    points = version_shares(_versions([(1, 2, 0)] * 2345), "subject")
    assert len(points) == 100 and points[0].first == 1 and points[-1].version == 2345
    assert sum(p.decisions for p in points) == 3 * 2345
    assert all(b.first == a.version + 1 for a, b in zip(points, points[1:], strict=False))
