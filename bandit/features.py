"""A deterministic feature-hashing encoder from context mappings to fixed-width vectors."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from bandit.policy import Context, PolicyError


@lru_cache(maxsize=65_536)
def hashed_slot(token: str, dim: int) -> tuple[int, float]:
    """The column in ``1..dim-1`` and the sign (+1 or -1) of ``token``; stable across processes.

    Column 0 is reserved for the intercept. The sign halves the bias that collisions add to inner
    products (Weinberger et al. 2009, "Feature hashing for large scale multitask learning").
    """
    value = int.from_bytes(hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest(), "little")
    return 1 + (value >> 1) % (dim - 1), 1.0 if value & 1 else -1.0


MAX_DIM = 4096
"""The widest hashed vector: the linear policies keep a ``dim x dim`` matrix per variant."""


def check_dim(dim: object) -> int:
    """``options.dim`` as an int in [2, :data:`MAX_DIM`]."""
    if isinstance(dim, bool) or not isinstance(dim, int | np.integer) or dim < 2:
        raise PolicyError(f"options.dim: expected an integer >= 2, got {dim!r}")
    if dim > MAX_DIM:
        raise PolicyError(
            f"options.dim: at most {MAX_DIM} (the linear policies keep a dim x dim matrix per variant), "
            f"got {dim!r}"
        )
    return int(dim)


class FeatureHasher:
    """Encode context mappings as vectors of width ``dim``.

    Column 0 is an intercept (always 1). A numeric feature ``name: x`` adds ``±x`` at the column of
    ``name``; a string or bool feature adds ``±1`` at the column of ``"name=value"`` (bools as
    ``true``/``false``), i.e. a hashed one-hot. A ``None`` value is missing and adds nothing. Numbers
    are used as they are, so put features on comparable scales (e.g. log of monetary value) for the
    linear policies.

    Parameters
    ----------
    dim : int, in [2, 4096]
    """

    def __init__(self, dim: int = 64) -> None:
        self.dim = check_dim(dim)

    def encode(self, rows: Sequence[Context]) -> np.ndarray:
        """The design matrix, shape ``(len(rows), dim)``, float64. Rows must be validated mappings."""
        out = np.zeros((len(rows), self.dim))
        out[:, 0] = 1.0
        for i, row in enumerate(rows):
            for name, value in row.items():
                if value is None:  # missing
                    continue
                if isinstance(value, bool | np.bool_):
                    column, sign = hashed_slot(f"{name}={'true' if bool(value) else 'false'}", self.dim)
                    out[i, column] += sign
                elif isinstance(value, str):
                    column, sign = hashed_slot(f"{name}={value}", self.dim)
                    out[i, column] += sign
                else:
                    column, sign = hashed_slot(name, self.dim)
                    out[i, column] += sign * float(value)
        return out
