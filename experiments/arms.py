"""Arms as combinations of slot variants, in ``itertools.product`` order (last slot fastest)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from functools import lru_cache

import numpy as np


def combinations(slot_sizes: Sequence[int]) -> np.ndarray:
    """Every combination of variant positions, shape ``(k, n_slots)``, ``k = prod(slot_sizes)``.

    Built once per tuple of sizes (assignment asks for it on every call) and read-only.
    """
    return _combinations(tuple(int(s) for s in slot_sizes))


@lru_cache(maxsize=1024)
def _combinations(slot_sizes: tuple[int, ...]) -> np.ndarray:
    out = np.array(list(itertools.product(*(range(s) for s in slot_sizes))), dtype=np.int64).reshape(
        -1, len(slot_sizes)
    )
    out.setflags(write=False)
    return out


def arm_index(positions: np.ndarray, slot_sizes: Sequence[int]) -> np.ndarray:
    """The arm (combination) index of per-slot variant positions, shape ``(n, n_slots)`` -> ``(n,)``.

    Examples
    --------
    >>> arm_index(np.array([[1, 2]]), [2, 3]).tolist()
    [5]
    """
    index = np.zeros(positions.shape[0], dtype=np.int64)
    for s, size in enumerate(slot_sizes):
        index = index * size + positions[:, s]
    return index


def allowed_mask(slot_allowed: Sequence[np.ndarray], slot_sizes: Sequence[int]) -> np.ndarray:
    """The arms every slot allows: ``(n, k)`` from per-slot masks of shape ``(n, m_s)``."""
    combos = combinations(slot_sizes)
    mask = np.ones((slot_allowed[0].shape[0], combos.shape[0]), dtype=bool)
    for s, allowed in enumerate(slot_allowed):
        mask &= allowed[:, combos[:, s]]
    return mask


def combination_features(
    slot_features: Mapping[str, Sequence[Mapping[str, object]]],
) -> list[dict[str, object]]:
    """Per-arm feature dicts: ``{slot: variant id}`` plus each variant's features as ``slot.name``.

    ``slot_features[slot][i]`` is ``{"id": ..., **features}`` of the slot's i-th variant.
    """
    names = list(slot_features)
    out = []
    for combo in itertools.product(*(slot_features[s] for s in names)):
        features: dict[str, object] = {}
        for slot, variant in zip(names, combo, strict=True):
            for key, value in variant.items():
                features[slot if key == "id" else f"{slot}.{key}"] = value
        out.append(features)
    return out
