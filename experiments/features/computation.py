"""One feature computation over a whole history: features, RFM, segments and, asked for, scores.

:func:`compute_features` reads the history once (chunk by chunk: memory grows with recipients, not
events), then computes each recipient's features as of ``as_of`` (:mod:`~experiments.features.table`),
their RFM scores (:mod:`~experiments.features.rfm`), K-means segments
(:mod:`~experiments.features.segments`) and, with a horizon, the conversion model and its
``p_convert`` (:mod:`~experiments.features.scores`). The result, :class:`FeatureSet`, gives one
:class:`RecipientFeatures` row per recipient, a table, or the JSON that ``sendlab features compute
--json`` and ``POST /v1/features/compute`` print.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from experiments.errors import InvalidInput
from experiments.features.events import EventBatch
from experiments.features.rfm import RFM_CONVENTION, RfmScores, rfm_scores
from experiments.features.scores import ConversionScores, fit_conversion_scores
from experiments.features.segments import (
    Segmentation,
    engagement_for_segments,
    segment_features,
    segment_recipients,
)
from experiments.features.settings import FeatureSettings
from experiments.features.table import BASE_FEATURES, FeatureTable, feature_table
from experiments.features.totals import Cutoff, HistoryTotals, aggregate_history, count_column


@dataclass(frozen=True)
class RecipientFeatures:
    """Everything computed about one recipient (one row of a feature table).

    Attributes
    ----------
    recipient_id : str
    recency_days : float or None
        None: never bought.
    days_since_last_event : float
    frequency : int
    monetary : float
    average_order_value : float or None
        None: no purchase in the window.
    engagement : mapping of str to int
        ``<type>_<window>d -> count``.
    rfm : (int, int, int)
        ``(r, f, m)``, each 1 to 5.
    segment : int
    p_convert : float or None
        None when no model was asked for.
    """

    recipient_id: str
    recency_days: float | None
    days_since_last_event: float
    frequency: int
    monetary: float
    average_order_value: float | None
    engagement: Mapping[str, int]
    rfm: tuple[int, int, int]
    segment: int
    p_convert: float | None = None

    def to_dict(self) -> dict[str, object]:
        """The recipient as the JSON contract has it (``p_convert`` null without a model)."""
        return {
            "recipient_id": self.recipient_id,
            "recency_days": self.recency_days,
            "days_since_last_event": self.days_since_last_event,
            "frequency": self.frequency,
            "monetary": self.monetary,
            "average_order_value": self.average_order_value,
            "engagement": dict(self.engagement),
            "rfm": dict(zip("rfm", self.rfm, strict=True)),
            "segment": self.segment,
            "p_convert": self.p_convert,
        }

    def to_context(self) -> dict[str, object]:
        """The recipient as context attributes (the feature table's row): the fields above by name, the
        engagement counts by theirs (``open_30d``), ``rfm_r``, ``rfm_f``, ``rfm_m``; a null one left out."""
        context: dict[str, object] = {
            "recency_days": self.recency_days,
            "days_since_last_event": self.days_since_last_event,
            "frequency": self.frequency,
            "monetary": self.monetary,
            "average_order_value": self.average_order_value,
            "rfm_r": self.rfm[0], "rfm_f": self.rfm[1], "rfm_m": self.rfm[2],
            "segment": self.segment,
            "p_convert": self.p_convert,
            **self.engagement,
        }
        return {name: value for name, value in context.items() if value is not None}


@dataclass(frozen=True)
class EventCounts:
    """Events read, used (at or before ``as_of``) and left out (after it)."""

    read: int
    used: int
    after_as_of: int


@dataclass(frozen=True)
class FeatureSet:
    """The result of one computation.

    Attributes
    ----------
    settings : FeatureSettings
    events : EventCounts
    table : FeatureTable
        Features as of ``settings.as_of``, recipients sorted by id.
    rfm : RfmScores
    segmentation : Segmentation
    scores : ConversionScores or None
        With ``settings.horizon_days``.
    """

    settings: FeatureSettings
    events: EventCounts
    table: FeatureTable
    rfm: RfmScores
    segmentation: Segmentation
    scores: ConversionScores | None = None

    def __len__(self) -> int:
        return len(self.table)

    def recipients(self) -> Iterator[RecipientFeatures]:
        """One :class:`RecipientFeatures` per recipient, in the table's order."""
        table = self.table
        names = [c.name for c in table.engagement]
        counts = np.column_stack([c.counts for c in table.engagement]) if names else None
        p_convert = self.scores.p_convert if self.scores is not None else None
        for i, recipient in enumerate(table.recipient_ids):
            yield RecipientFeatures(
                recipient_id=str(recipient),
                recency_days=_number(table.recency_days[i]),
                days_since_last_event=float(table.days_since_last_event[i]),
                frequency=int(table.frequency[i]),
                monetary=float(table.monetary[i]),
                average_order_value=_number(table.average_order_value[i]),
                engagement=dict(zip(names, counts[i].tolist(), strict=True)) if counts is not None else {},
                rfm=(int(self.rfm.r[i]), int(self.rfm.f[i]), int(self.rfm.m[i])),
                segment=int(self.segmentation.labels[i]),
                p_convert=None if p_convert is None else float(p_convert[i]),
            )

    def to_frame(self) -> pd.DataFrame:
        """One row per recipient: the table's columns, ``r``, ``f``, ``m``, ``segment`` and ``p_convert``."""
        frame = self.table.to_frame()
        frame["r"], frame["f"], frame["m"] = self.rfm.r, self.rfm.f, self.rfm.m
        frame["segment"] = self.segmentation.labels
        if self.scores is not None:
            frame["p_convert"] = self.scores.p_convert
        return frame

    def to_dict(self) -> dict[str, object]:
        """The JSON contract: ``recipients``, ``segments``, ``segmentation``, ``model`` and the settings."""
        s, seg = self.settings, self.segmentation
        return {
            "as_of": s.as_of.isoformat(),
            "window_days": s.window_days,
            "engagement_windows": list(s.engagement_windows),
            "purchase_type": s.purchase_type,
            "events": {"read": self.events.read, "used": self.events.used,
                       "after_as_of": self.events.after_as_of},
            "rfm_convention": RFM_CONVENTION,
            "recipients": [r.to_dict() for r in self.recipients()],
            "segments": [{"segment": x.segment, "size": x.size, "centre": dict(x.centre)}
                         for x in seg.segments],
            "segmentation": {"k": seg.k, "chosen_by": seg.chosen_by,
                             "silhouette": {str(k): v for k, v in seg.silhouette.items()},
                             "features": list(seg.features), "recency_cap_days": seg.recency_cap_days,
                             "fit_rows": seg.fit_rows, "seed": s.seed},
            "model": None if self.scores is None else _report_to_dict(self.scores),
        }


def _number(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _report_to_dict(scores: ConversionScores) -> dict[str, object]:
    r = scores.report
    return {
        "target": f"a purchase in the {r.horizon_days} days after as_of (p_convert)",
        "horizon_days": r.horizon_days, "split_at": r.split_at.isoformat(), "recipients": r.recipients,
        "training_rows": r.training_rows, "positives": r.positives, "folds": r.folds, "auc": r.auc,
        "auc_by_fold": list(r.auc_by_fold), "log_loss": r.log_loss, "base_log_loss": r.base_log_loss,
        "calibration": [{"lower": b.lower, "upper": b.upper, "count": b.count,
                         "mean_predicted": b.mean_predicted, "observed_rate": b.observed_rate}
                        for b in r.calibration],
        "importance": [{"feature": f.feature, "mean": f.mean, "sd": f.sd} for f in r.importance],
        "features": list(r.features),
    }


def model_features(table: FeatureTable, counted: Iterable[tuple[str, int]]) -> pd.DataFrame:
    """The conversion model's inputs: :data:`BASE_FEATURES` and the counts ``counted`` (0 where unseen)."""
    columns = {name: getattr(table, name) for name in BASE_FEATURES}
    columns.update({count_column(t, d): table.engagement_count(t, d) for t, d in counted})
    return pd.DataFrame(columns)


def compute_features(
    events: Iterable[EventBatch],
    settings: FeatureSettings,
    *,
    on_progress: Callable[[int], None] | None = None,
) -> FeatureSet:
    """Features, RFM scores, segments and (with ``settings.horizon_days``) conversion scores.

    Parameters
    ----------
    events : iterable of EventBatch
        The history in chunks (:func:`~experiments.features.events.events_from_frame`, or a reader
        of :mod:`simulations.history`), read once.
    settings : FeatureSettings
    on_progress : callable, optional
        Called with the number of events read after each chunk.

    Returns
    -------
    FeatureSet

    Raises
    ------
    InvalidInput
        A history with no event at or before ``as_of``, too few recipients for the segments, too few
        buyers (or non-buyers) for the model, ...
    """
    s = settings
    windows = s.engagement_windows
    count_windows = windows if s.horizon_days is None else tuple(sorted({*windows, s.horizon_days}))
    cutoffs = [Cutoff(s.as_of.value, s.window_days, count_windows, s.purchase_type)]
    if s.split_at is not None:
        cutoffs.append(Cutoff(s.split_at.value, s.window_days, windows, s.purchase_type))
    totals = aggregate_history(events, cutoffs, on_progress=on_progress)
    now = totals[0]
    if not len(now):
        raise InvalidInput("as_of", f"the history has no event at or before {s.as_of.isoformat()} "
                                    f"({now.events_after} after it)")
    from threadpoolctl import threadpool_limits

    table = feature_table(now, s.as_of, s.window_days, windows)
    rfm = rfm_scores(table.recency_days, table.frequency, table.monetary)
    with threadpool_limits(limits=s.threads):
        segmentation = _segments(table, s)
        scores = None if s.split_at is None else _conversion_scores(totals[1], now, table, s)
    return FeatureSet(
        settings=s,
        events=EventCounts(now.events_used + now.events_after, now.events_used, now.events_after),
        table=table,
        rfm=rfm,
        segmentation=segmentation,
        scores=scores,
    )


def _segments(table: FeatureTable, s: FeatureSettings) -> Segmentation:
    counts = {(c.event_type, c.window_days): c.counts for c in table.engagement}
    names, matrix = segment_features(table.recency_days, table.frequency, table.monetary,
                                     engagement_for_segments(counts, s.purchase_type), s.window_days)
    return segment_recipients(names, matrix, k=s.k, k_range=s.k_range, recency_cap_days=s.window_days,
                              seed=s.seed, segment_rows=s.segment_rows, silhouette_rows=s.silhouette_rows)


def _conversion_scores(
    then: HistoryTotals, now: HistoryTotals, table: FeatureTable, s: FeatureSettings,
) -> ConversionScores:
    assert s.split_at is not None and s.horizon_days is not None
    if not len(then):
        raise InvalidInput("horizon_days", f"the history has no event at or before "
                                           f"{s.split_at.isoformat()} (as_of - horizon_days) to learn from")
    past = feature_table(then, s.split_at, s.window_days, s.engagement_windows)
    label_counts = now.frame[count_column(s.purchase_type, s.horizon_days)] if (
        (s.purchase_type, s.horizon_days) in now.counted) else pd.Series(0, index=now.frame.index)
    labels = label_counts.reindex(past.recipient_ids).to_numpy() > 0
    counted = sorted({(c.event_type, c.window_days) for c in (*past.engagement, *table.engagement)})
    return fit_conversion_scores(
        model_features(past, counted), labels, model_features(table, counted),
        horizon_days=s.horizon_days, split_at=s.split_at, folds=s.folds, seed=s.seed,
        model_rows=s.model_rows,
    )
