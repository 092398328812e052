"""A calibration table: predicted probabilities against observed rates, in bins of equal count."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Bins of the calibration table (deciles of the predictions).
CALIBRATION_BINS = 10


@dataclass(frozen=True)
class CalibrationBin:
    """Predictions in ``(lower, upper]`` (the first bin includes its lower edge).

    Attributes
    ----------
    lower, upper : float
        Edges: quantiles of the predictions.
    count : int
    mean_predicted : float
        The mean predicted probability in the bin.
    observed_rate : float
        The share of the bin's recipients who converted.
    """

    lower: float
    upper: float
    count: int
    mean_predicted: float
    observed_rate: float


def calibration_table(
    labels: np.ndarray, predicted: np.ndarray, bins: int = CALIBRATION_BINS,
) -> tuple[CalibrationBin, ...]:
    """Mean prediction and observed rate in bins cut at quantiles of the predictions.

    The edges are the ``0, 1/bins, ..., 1`` quantiles of ``predicted``; a prediction equal to an inner
    edge belongs to the bin below it; empty bins (tied quantiles) are left out. This is the binning of
    :func:`sklearn.calibration.calibration_curve` with ``strategy="quantile"``.

    Parameters
    ----------
    labels : ndarray of {0, 1}, shape (n,)
    predicted : ndarray of float, shape (n,)
        Probabilities.
    bins : int

    Returns
    -------
    tuple of CalibrationBin
    """
    labels = np.asarray(labels, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    edges = np.quantile(predicted, np.linspace(0, 1, bins + 1))
    which = np.searchsorted(edges[1:-1], predicted, side="left")
    counts = np.bincount(which, minlength=bins)
    sums = np.bincount(which, weights=predicted, minlength=bins)
    hits = np.bincount(which, weights=labels, minlength=bins)
    return tuple(
        CalibrationBin(float(edges[i]), float(edges[i + 1]), int(counts[i]), float(sums[i] / counts[i]),
                       float(hits[i] / counts[i]))
        for i in range(bins) if counts[i]
    )
