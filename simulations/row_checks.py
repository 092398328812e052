"""The checks of logged sends, on a chunk's columns as arrays: which rows are used, and why the others
are set aside.

Both readers call :func:`split_rows`: the pandas one (:func:`simulations.logs.validate_rows`) and the
numpy one (:meth:`simulations.log_arrays.LogArrays.report`), so a row is used or set aside for the same
reason, with the same example, whichever read it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from simulations.data import MIN_PROPENSITY
from simulations.load_reports import MAX_EXAMPLES, REJECTION_REASONS, RejectedRows

#: The column whose value each rejection reason shows in its examples.
_EXAMPLE_FIELD = {
    "unknown_action": "action", "missing_propensity": "propensity", "zero_propensity": "propensity",
    "propensity_below_floor": "propensity", "invalid_propensity": "propensity", "missing_reward": "reward",
    "reward_out_of_range": "reward",
}


def split_rows(
    indices: np.ndarray,
    missing_action: np.ndarray,
    rewards: np.ndarray,
    propensities: np.ndarray,
    missing_context: np.ndarray,
    reward_range: tuple[float, float] | None,
    row_numbers: np.ndarray,
    example: Callable[[str, int], str],
    propensity_not_number: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, RejectedRows]]:
    """The checks of one chunk, on its columns as arrays: which rows are used, and the rejections.

    Parameters
    ----------
    indices : ndarray of int, shape (n,)
        Each row's variant index (-1: unknown or missing).
    missing_action, missing_context : ndarray of bool, shape (n,)
    rewards, propensities : ndarray of float, shape (n,)
        NaN where missing or not a number.
    reward_range : (float, float) or None
    row_numbers : ndarray of int, shape (n,)
    example : callable
        ``example(field, i)``: the text shown for row ``i``'s ``"action"``, ``"propensity"`` or
        ``"reward"`` in a rejection's examples.
    propensity_not_number : ndarray of bool, shape (n,), optional
        Rows whose propensity is given but is not a number (NaN in ``propensities``): invalid, not
        missing. ``None``: every NaN propensity is missing.

    Returns
    -------
    keep : ndarray of bool, shape (n,)
    rejected : dict
        Per reason (each row counted under its first reason, in ``REJECTION_REASONS`` order).
    """
    low, high = reward_range if reward_range is not None else (-math.inf, math.inf)
    not_number = np.zeros(len(indices), bool) if propensity_not_number is None else propensity_not_number
    checks = {
        "missing_action": missing_action,
        "unknown_action": ~missing_action & (indices < 0),
        "missing_propensity": np.isnan(propensities) & ~not_number,
        "zero_propensity": propensities == 0,
        "propensity_below_floor": (propensities > 0) & (propensities < MIN_PROPENSITY),
        "invalid_propensity": (propensities < 0) | (propensities > 1) | np.isinf(propensities) | not_number,
        "missing_reward": ~np.isfinite(rewards),
        "reward_out_of_range": np.isfinite(rewards) & ((rewards < low) | (rewards > high)),
        "missing_context": missing_context,
    }
    taken = np.zeros(len(indices), dtype=bool)
    rejected: dict[str, RejectedRows] = {}
    for reason in REJECTION_REASONS:
        rows = checks[reason] & ~taken
        taken |= rows
        count = int(rows.sum())
        if count:
            where = np.flatnonzero(rows)[:MAX_EXAMPLES]
            if reason == "missing_context":
                values = ["a feature is missing"] * len(where)
            elif reason == "missing_action":
                values = ["<NA>"] * len(where)  # one marker, whichever reader left the id missing
            else:
                values = [example(_EXAMPLE_FIELD[reason], int(i)) for i in where]
            rejected[reason] = RejectedRows(
                count, tuple((int(row_numbers[i]), v) for i, v in zip(where, values, strict=True))
            )
    return ~taken, rejected
