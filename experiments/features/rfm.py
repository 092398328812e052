"""RFM scores: recency, frequency and monetary value, each as a quintile score from 1 to 5.

Convention: 5 is best. ``r = 5`` is the most recent buyers (fewest days since the last purchase), ``f = 5``
the most purchases in the window, ``m = 5`` the largest amount in it. A recipient who never bought
ranks below every buyer in recency.

The score of a value among ``n`` recipients counts the recipients with a strictly worse value, ``L``
(the value's ``min`` rank less one, found by binary search in the sorted values):

.. math:: s = 1 + \\lfloor 5 L / n \\rfloor

so tied values always share a score (the lowest their tie reaches), recipients with nothing (no
purchase in the window) all score 1, and with ``n`` distinct values each score holds ``n / 5``
recipients when 5 divides ``n``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

QUINTILES = 5
RFM_CONVENTION = ("quintiles 1-5, 5 best (r=5 most recent, f=5 most purchases, m=5 most spent); "
                  "score = 1 + floor(5 * L / n) with L the recipients strictly worse (min rank - 1), "
                  "so ties share a score; no purchase ever ranks least recent")


@dataclass(frozen=True)
class RfmScores:
    """Quintile scores per recipient.

    Attributes
    ----------
    r, f, m : ndarray of int8, shape (n,)
        From 1 to 5, 5 best.
    """

    r: np.ndarray
    f: np.ndarray
    m: np.ndarray


def quintile_scores(values: np.ndarray) -> np.ndarray:
    """The quintile score (1 to 5) of each value, larger values scoring higher (module docstring).

    Parameters
    ----------
    values : ndarray of float, shape (n,)
        No NaN (``-inf`` ranks below every number).

    Returns
    -------
    ndarray of int8, shape (n,)

    Examples
    --------
    >>> quintile_scores(np.array([0.0, 0.0, 3.0, 1.0, 7.0])).tolist()
    [1, 1, 4, 3, 5]
    """
    values = np.asarray(values, dtype=float)
    n = len(values)
    if n == 0:
        return np.zeros(0, dtype=np.int8)
    worse = np.searchsorted(np.sort(values), values, side="left")
    return (1 + (QUINTILES * worse) // n).astype(np.int8)


def rfm_scores(recency_days: np.ndarray, frequency: np.ndarray, monetary: np.ndarray) -> RfmScores:
    """The R, F and M scores of recipients.

    Parameters
    ----------
    recency_days : ndarray of float, shape (n,)
        Days since the last purchase; NaN for none.
    frequency : ndarray of int, shape (n,)
    monetary : ndarray of float, shape (n,)

    Returns
    -------
    RfmScores
    """
    recency = np.where(np.isnan(recency_days), -np.inf, -np.asarray(recency_days, dtype=float))
    return RfmScores(quintile_scores(recency), quintile_scores(frequency), quintile_scores(monetary))
