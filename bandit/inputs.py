"""Validation of the arrays and contexts that callers hand to a policy.

Every check raises :class:`bandit.policy.PolicyError` with a message that names the argument and the
problem, so a caller can tell a malformed batch from a bug.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from bandit.context_columns import is_frame
from bandit.features import EncodedContexts
from bandit.policy import Context, Contexts, PolicyError


def batch_size(contexts: Contexts) -> int:
    """The number of rows in ``contexts``: the int itself, or the rows of the sequence, 2-D array,
    DataFrame or :class:`~bandit.features.EncodedContexts`."""
    if isinstance(contexts, bool):
        raise PolicyError("contexts: expected a batch size (int) or a sequence of feature mappings, got bool")
    if isinstance(contexts, int | np.integer):
        if contexts < 0:
            raise PolicyError(f"contexts: batch size must be >= 0, got {int(contexts)}")
        return int(contexts)
    if isinstance(contexts, np.ndarray):
        if contexts.ndim != 2:
            raise PolicyError(f"contexts: an array of contexts must have 2 dimensions (rows, features), "
                              f"got shape {contexts.shape}")
        return int(contexts.shape[0])
    if isinstance(contexts, EncodedContexts) or is_frame(contexts):
        return len(contexts)  # type: ignore[arg-type]
    if isinstance(contexts, str | bytes) or not isinstance(contexts, Sequence):
        raise PolicyError(
            "contexts: expected a batch size (int) or a sequence of feature mappings, "
            f"got {type(contexts).__name__}"
        )
    return len(contexts)


def context_rows(contexts: Contexts) -> list[Context]:
    """The feature mappings of a batch, each value checked; an int ``n`` means ``n`` rows without
    features, array columns are named ``x0, x1, ...`` and DataFrame columns keep their names."""
    n = batch_size(contexts)
    if isinstance(contexts, int | np.integer):
        return [{}] * n
    if isinstance(contexts, EncodedContexts):
        raise PolicyError("contexts: this policy needs the contexts themselves, not a hashed batch")
    if isinstance(contexts, np.ndarray):
        names = [f"x{j}" for j in range(contexts.shape[1])]
        rows: list = [dict(zip(names, row, strict=True)) for row in contexts.tolist()]
    elif is_frame(contexts):
        rows = contexts.to_dict("records")  # type: ignore[union-attr]
    else:
        rows = list(contexts)  # type: ignore[arg-type]
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise PolicyError(
                f"contexts[{i}]: expected a mapping of feature name to value, got {type(row).__name__}"
            )
        for name, value in row.items():
            check_feature(name, value, where=f"contexts[{i}]")
    return rows


def check_feature(name: object, value: object, *, where: str) -> None:
    """Check one feature: a str name and a float, int, str or bool value (numbers finite).

    ``None`` is accepted and means "missing": encoders leave the feature out.
    """
    if not isinstance(name, str) or not name:
        raise PolicyError(f"{where}: feature names must be non-empty strings, got {name!r}")
    if value is None or isinstance(value, bool | np.bool_ | str):
        return
    if isinstance(value, int | float | np.integer | np.floating):
        if not math.isfinite(float(value)):
            raise PolicyError(f"{where}: feature {name!r} must be finite, got {value!r}")
        return
    raise PolicyError(
        f"{where}: feature {name!r} must be a float, int, str, bool or None, got {type(value).__name__}"
    )


def check_allowed(allowed: np.ndarray | None, n: int, n_actions: int) -> np.ndarray | None:
    """The ``allowed`` mask as a bool array of shape ``(n, n_actions)``, or None for all allowed."""
    if allowed is None:
        return None
    mask = np.asarray(allowed)
    if mask.dtype != np.bool_:
        raise PolicyError(f"allowed: expected a boolean mask, got dtype {mask.dtype}")
    if mask.shape != (n, n_actions):
        raise PolicyError(f"allowed: expected shape ({n}, {n_actions}), got {mask.shape}")
    empty = ~mask.any(axis=1)
    if empty.any():
        row = int(np.flatnonzero(empty)[0])
        raise PolicyError(f"allowed: row {row} allows no action ({int(empty.sum())} such rows)")
    return mask


@dataclass(frozen=True)
class Feedback:
    """A validated batch of logged decisions and their rewards.

    Attributes
    ----------
    actions : ndarray of int64, shape (n,)
    rewards : ndarray of float64, shape (n,)
    propensities : ndarray of float64, shape (n,)
    allowed : ndarray of bool, shape (n, k), or None
        The mask at decision time, when the caller passed it.
    """

    actions: np.ndarray
    rewards: np.ndarray
    propensities: np.ndarray
    allowed: np.ndarray | None = None


def check_feedback(
    n: int, n_actions: int, actions: object, rewards: object, propensities: object,
    allowed: np.ndarray | None = None,
) -> Feedback:
    """Validate the arrays passed to ``update`` for a batch of ``n`` rows (and the decision-time mask)."""
    acts = _check_actions(n, n_actions, actions)
    rew = _finite_array("rewards", rewards, n)
    prop = float_array("propensities", propensities, n)
    outside = ~((prop > 0.0) & (prop <= 1.0))  # also catches NaN
    if outside.any():
        raise PolicyError(
            f"propensities: must lie in (0, 1], found {float(prop[outside][0])!r} "
            f"({int(outside.sum())} such rows)"
        )
    mask = check_allowed(allowed, n, n_actions)
    if mask is not None:
        refused = ~mask[np.arange(n), acts]
        if refused.any():
            row = int(np.flatnonzero(refused)[0])
            raise PolicyError(f"allowed: row {row} does not allow its logged action {int(acts[row])}")
    return Feedback(acts, rew, prop, mask)


@dataclass(frozen=True)
class Revision:
    """A validated batch of learned rewards to replace (see ``Policy.revise``).

    Attributes
    ----------
    actions : ndarray of int64, shape (n,)
    old_rewards, new_rewards : ndarray of float64, shape (n,)
    """

    actions: np.ndarray
    old_rewards: np.ndarray
    new_rewards: np.ndarray

    @property
    def deltas(self) -> np.ndarray:
        """``new_rewards - old_rewards``, shape (n,)."""
        return self.new_rewards - self.old_rewards


def check_revision(
    n: int, n_actions: int, actions: object, old_rewards: object, new_rewards: object
) -> Revision:
    """Validate the arrays passed to ``revise`` for a batch of ``n`` rows."""
    acts = _check_actions(n, n_actions, actions)
    old = _finite_array("old_rewards", old_rewards, n)
    return Revision(acts, old, _finite_array("new_rewards", new_rewards, n))


def _check_actions(n: int, n_actions: int, actions: object) -> np.ndarray:
    acts = np.asarray(actions)
    if acts.ndim != 1 or acts.shape[0] != n:
        raise PolicyError(f"actions: expected shape ({n},), got {acts.shape}")
    if n and not np.issubdtype(acts.dtype, np.integer):
        if not np.issubdtype(acts.dtype, np.floating) or not np.all(np.isfinite(acts)) or np.any(acts % 1):
            raise PolicyError(f"actions: expected integer action indices, got dtype {acts.dtype}")
    acts = acts.astype(np.int64)
    bad = (acts < 0) | (acts >= n_actions)
    if bad.any():
        raise PolicyError(
            f"actions: unknown action index {int(acts[bad][0])} (valid: 0..{n_actions - 1})"
        )
    return acts


def _finite_array(name: str, values: object, n: int) -> np.ndarray:
    arr = float_array(name, values, n)
    if not np.all(np.isfinite(arr)):
        raise PolicyError(f"{name}: must be finite, found {int((~np.isfinite(arr)).sum())} NaN or inf")
    return arr


def float_array(name: str, values: object, n: int, *, expected: str = "numbers") -> np.ndarray:
    """``values`` as float64 of shape ``(n,)``; ``expected`` names what they should be in the message."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise PolicyError(f"{name}: expected {expected}, could not convert ({exc})") from None
    if arr.shape != (n,):
        raise PolicyError(f"{name}: expected shape ({n},), got {arr.shape}")
    return arr


def check_positive(name: str, value: object, *, allow_zero: bool = False) -> float:
    """A finite float option that must be > 0 (or >= 0 with ``allow_zero``)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise PolicyError(f"options.{name}: expected a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise PolicyError(f"options.{name}: must be finite and {bound}, got {value!r}")
    return number


def check_finite(name: str, value: object) -> float:
    """A finite float option (any sign)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise PolicyError(f"options.{name}: expected a number, got {value!r}")
    if not math.isfinite(float(value)):
        raise PolicyError(f"options.{name}: must be finite, got {value!r}")
    return float(value)
