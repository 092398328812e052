"""K-means segments of recipients, with ``k`` given or chosen by silhouette.

The segmentation features are recency (days since the last purchase, capped at the frequency window:
a recipient who has not bought within it, or never, counts as ``window_days``), frequency, monetary
value, and each engagement type's count in the longest engagement window. Each is standardised (mean 0,
standard deviation 1 over all recipients; a constant feature stays 0) so that no unit dominates the
Euclidean distance, and K-means (scikit-learn, Lloyd's algorithm, ``n_init`` seeded starts) runs on a
seeded sample of at most ``segment_rows`` recipients; every recipient then joins its nearest centre.

Without ``k``, each ``k`` of the range is fitted and scored by the mean silhouette coefficient
(Rousseeuw 1987) on a seeded sample of at most ``silhouette_rows`` of the fitted recipients; the
highest wins (the smaller ``k`` on a tie). Segments are numbered from 0 by size, largest first, and
each is described by its centre in the original units (the mean of its members' features).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from experiments.errors import InvalidInput
from experiments.features.totals import count_column

#: K-means starts per k (the best of them by inertia is kept).
N_INIT = 10
#: Megabytes of pairwise distances the silhouette holds at once (scikit-learn computes them in blocks).
SILHOUETTE_MEMORY_MB = 64


@dataclass(frozen=True)
class Segment:
    """One K-means segment.

    Attributes
    ----------
    segment : int
        Its number (0 is the largest).
    size : int
        Recipients in it.
    centre : mapping of str to float
        ``feature -> mean of its members``, in the features' own units.
    """

    segment: int
    size: int
    centre: Mapping[str, float]


@dataclass(frozen=True)
class Segmentation:
    """Recipients split into K-means segments.

    Attributes
    ----------
    k : int
    chosen_by : {"given", "silhouette"}
    silhouette : mapping of int to float
        ``k -> mean silhouette`` for each ``k`` scored (the given ``k`` is scored too when it is 2 or more).
    features : tuple of str
        The segmentation features, in order.
    recency_cap_days : int
        Recency above this (or none) counts as this.
    fit_rows : int
        Recipients K-means was fitted on.
    labels : ndarray of int, shape (n,)
        Each recipient's segment.
    segments : tuple of Segment
        By number.
    """

    k: int
    chosen_by: Literal["given", "silhouette"]
    silhouette: Mapping[int, float]
    features: tuple[str, ...]
    recency_cap_days: int
    fit_rows: int
    labels: np.ndarray
    segments: tuple[Segment, ...]


def segment_features(
    recency_days: np.ndarray, frequency: np.ndarray, monetary: np.ndarray,
    engagement: Mapping[str, np.ndarray], window_days: int,
) -> tuple[tuple[str, ...], np.ndarray]:
    """The segmentation features (module docstring) as ``(names, (n, d) matrix)``.

    ``engagement`` maps a count's name (``open_90d``) to its counts.
    """
    capped = np.minimum(np.nan_to_num(recency_days, nan=window_days), window_days)
    names = ("recency_days", "frequency", "monetary", *engagement)
    matrix = np.column_stack([capped, frequency, monetary, *engagement.values()]).astype(float)
    return names, matrix


def standardise(matrix: np.ndarray) -> np.ndarray:
    """Each column less its mean, over its standard deviation (``ddof=0``; a constant column is 0)."""
    sd = matrix.std(axis=0)
    return (matrix - matrix.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def _sample(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    return np.arange(n) if n <= size else np.sort(rng.choice(n, size=size, replace=False))


def segment_recipients(
    names: tuple[str, ...],
    matrix: np.ndarray,
    *,
    k: int | None,
    k_range: tuple[int, int],
    recency_cap_days: int,
    seed: int,
    segment_rows: int,
    silhouette_rows: int,
) -> Segmentation:
    """K-means segments of recipients (module docstring).

    Parameters
    ----------
    names : tuple of str
        The features' names.
    matrix : ndarray of float, shape (n, d)
        The features in their own units (:func:`segment_features`).
    k : int or None
        Segments; ``None`` chooses by silhouette over ``k_range`` (inclusive).
    k_range : (int, int)
    recency_cap_days : int
        Reported with the result (the cap :func:`segment_features` applied).
    seed : int
        Seeds the samples and K-means.
    segment_rows, silhouette_rows : int
        Sample sizes for fitting and for the silhouette.

    Returns
    -------
    Segmentation

    Raises
    ------
    InvalidInput
        When the recipients have fewer distinct feature vectors than ``k`` (or than 3, to choose ``k``).
    """
    from sklearn import config_context
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(seed)
    scaled = standardise(matrix)
    fit_index = _sample(len(scaled), segment_rows, rng)
    fitted = scaled[fit_index]
    distinct = len(np.unique(fitted, axis=0))
    if k is not None:
        if distinct < k:
            raise InvalidInput("k", f"{k} segments need at least {k} recipients with distinct features; "
                                    f"the history has {distinct}")
        candidates = [k]
    else:
        if distinct < 3:
            raise InvalidInput("k", f"choosing k by silhouette needs at least 3 recipients with distinct "
                                    f"features, the history has {distinct}; give k")
        candidates = list(range(k_range[0], min(k_range[1], distinct - 1) + 1))
    score_index = _sample(len(fitted), silhouette_rows, rng)
    models = {}
    silhouette: dict[int, float] = {}
    for candidate in candidates:
        model = KMeans(n_clusters=candidate, n_init=N_INIT, random_state=seed).fit(fitted)
        models[candidate] = model
        scored_labels = model.labels_[score_index]
        if candidate >= 2 and len(np.unique(scored_labels)) >= 2:
            with config_context(working_memory=SILHOUETTE_MEMORY_MB):
                silhouette[candidate] = float(silhouette_score(fitted[score_index], scored_labels))
    chosen_by: Literal["given", "silhouette"] = "given" if k is not None else "silhouette"
    if k is None:
        if not silhouette:
            raise InvalidInput("k", "no k of the range could be scored by silhouette; give k")
        best = max(silhouette.values())
        k = min(c for c, s in silhouette.items() if s == best)
    labels = models[k].predict(scaled)
    return Segmentation(
        k=k,
        chosen_by=chosen_by,
        silhouette=silhouette,
        features=names,
        recency_cap_days=recency_cap_days,
        fit_rows=len(fit_index),
        **_numbered_by_size(labels, matrix, names, k),
    )


def _numbered_by_size(labels: np.ndarray, matrix: np.ndarray, names: tuple[str, ...], k: int) -> dict:
    """Labels renumbered by segment size (largest 0; ties by K-means' own order) and the segments."""
    sizes = np.bincount(labels, minlength=k)
    order = sorted(range(k), key=lambda s: (-sizes[s], s))
    renumber = np.empty(k, dtype=np.int64)
    renumber[order] = np.arange(k)
    relabelled = renumber[labels]
    segments = []
    for number, old in enumerate(order):
        members = matrix[labels == old]
        centre = members.mean(axis=0) if len(members) else np.full(len(names), np.nan)
        segments.append(Segment(number, int(sizes[old]), dict(zip(names, centre.tolist(), strict=True))))
    return {"labels": relabelled, "segments": tuple(segments)}


def engagement_for_segments(
    counts: Mapping[tuple[str, int], np.ndarray], purchase_type: str,
) -> dict[str, np.ndarray]:
    """The engagement counts segmentation uses: each type but ``purchase_type`` in its longest window.

    ``counts`` maps ``(type, window days)`` to counts; the result maps the count's name to it.
    """
    longest: dict[str, int] = {}
    for event_type, days in counts:
        if event_type != purchase_type:
            longest[event_type] = max(days, longest.get(event_type, 0))
    return {count_column(t, d): counts[(t, d)] for t, d in sorted(longest.items())}
