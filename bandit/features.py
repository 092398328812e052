"""A deterministic feature-hashing encoder from a batch of contexts to fixed-width vectors."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from bandit.context_columns import feature_columns
from bandit.policy import PolicyError


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


@dataclass(frozen=True, eq=False)
class EncodedContexts:
    """A batch already hashed by a :class:`FeatureHasher`: pass it to ``choose`` and then to ``update``
    of the linear policies to encode the batch once.

    Attributes
    ----------
    matrix : ndarray of float64, shape (n, dim)
        The design matrix (read-only).
    """

    matrix: np.ndarray

    def __post_init__(self) -> None:
        self.matrix.setflags(write=False)

    def __len__(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def dim(self) -> int:
        """The width of each row."""
        return int(self.matrix.shape[1])


class FeatureHasher:
    """Encode a batch of contexts as vectors of width ``dim``.

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

    def encode(self, contexts: object) -> np.ndarray:
        """The design matrix, shape ``(n, dim)``, float64, every value checked.

        Parameters
        ----------
        contexts : int, sequence of mappings, 2-D numeric array or DataFrame
            The batch (see :mod:`bandit.context_columns`); an int ``n`` means ``n`` rows without
            features.

        Work is per feature, not per value: a numeric column is added at once, and a categorical one
        hashes each distinct value once.
        """
        from bandit.inputs import batch_size

        n = batch_size(contexts)
        if isinstance(contexts, EncodedContexts):
            if contexts.dim != self.dim:
                raise PolicyError(f"contexts: encoded with dim {contexts.dim}, the policy has dim {self.dim}")
            return contexts.matrix
        out = np.zeros((n, self.dim))
        out[:, 0] = 1.0
        for column in feature_columns(contexts, n):
            rows = slice(None) if column.rows is None else column.rows
            if column.kind == "number":
                slot, sign = hashed_slot(column.name, self.dim)
                out[rows, slot] += sign * column.values
                continue
            distinct, inverse = np.unique(column.values, return_inverse=True)
            slots = np.array([hashed_slot(f"{column.name}={value}", self.dim) for value in distinct.tolist()])
            row_index = np.arange(n) if column.rows is None else column.rows
            out[row_index, slots[inverse, 0].astype(np.int64)] += slots[inverse, 1]
        return out

    def encode_once(self, contexts: object) -> EncodedContexts:
        """:meth:`encode` kept for reuse: the linear policies take it in place of ``contexts``."""
        if isinstance(contexts, EncodedContexts):
            self.encode(contexts)
            return contexts
        return EncodedContexts(self.encode(contexts))
