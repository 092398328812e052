"""Generators derived from a policy's seed and state, for Monte Carlo propensities."""

from __future__ import annotations

import hashlib

import numpy as np


def derived_generator(seed: int, *parts: np.ndarray | bytes) -> np.random.Generator:
    """A generator determined by ``seed`` and a digest of ``parts`` (never global state).

    Monte Carlo propensities use it, so the same policy state gives the same probabilities.
    """
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        digest.update(part if isinstance(part, bytes) else np.ascontiguousarray(part).tobytes())
    words = np.frombuffer(digest.digest(), dtype=np.uint32).tolist()
    return np.random.default_rng([seed, *words])
