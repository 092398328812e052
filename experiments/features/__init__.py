"""Audience features computed from a purchase and engagement history.

Pure computations over arrays and frames, with no I/O (the readers of files and SQL tables are in
:mod:`simulations.history`). scikit-learn is imported only when segments or scores are computed.

- :mod:`~experiments.features.settings`: ``FeatureSettings`` and the bounds;
- :mod:`~experiments.features.events`: ``events_from_frame``, ``EventBatch``, ``EventProblem``;
- :mod:`~experiments.features.totals`: per-recipient totals, merged chunk by chunk (``aggregate_history``);
- :mod:`~experiments.features.table`: ``FeatureTable`` (recency, frequency, monetary, engagement);
- :mod:`~experiments.features.rfm`: ``rfm_scores``, ``quintile_scores``;
- :mod:`~experiments.features.segments`: K-means ``segment_recipients``;
- :mod:`~experiments.features.scores` and :mod:`~experiments.features.calibration`: the conversion model;
- :mod:`~experiments.features.computation`: ``compute_features`` -> ``FeatureSet``.
"""

from experiments.features.computation import FeatureSet, RecipientFeatures, compute_features
from experiments.features.events import EventBatch, EventProblem, events_from_frame
from experiments.features.settings import FeatureSettings

__all__ = [
    "EventBatch",
    "EventProblem",
    "FeatureSet",
    "FeatureSettings",
    "RecipientFeatures",
    "compute_features",
    "events_from_frame",
]
