"""Sticky assignment by salted hashing: pure functions, no state, no randomness.

Every recipient gets a uniform number per (experiment salt, purpose, recipient):
``sha256("salt|part|...|recipient")``, whose first 53 bits divided by 2**53 lie in [0, 1).

Variants within a slot are chosen by *weighted rendezvous hashing*: variant ``i`` of weight ``w_i``
scores ``E_i = -ln(1 - u_i) / w_i`` with ``u_i`` the recipient's hash for ``(slot, variant id)``; the
lowest score wins. The ``E_i`` are independent exponentials of rates ``w_i``, so variant ``i`` wins
with probability ``w_i / sum(w)`` exactly. Raising one weight lowers only that variant's score, so a
recipient can only move *to* it: the share that moves equals the share that variant gains, the least
any bucketing can move (a cumulative-interval split of one uniform would shift the boundaries of every
later variant). Adding a variant likewise takes recipients from each old variant in proportion and
never swaps recipients between old variants. Restricting a slot by rules takes the minimum over the
allowed variants, so the probability renormalises over them and recipients whose variant is still
allowed keep it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

_SCALE = float(2**53)


def unit_hash(*parts: str) -> float:
    """A uniform number in [0, 1) determined by ``parts`` (salt first, recipient last)."""
    digest = hashlib.sha256("|".join(parts).encode("utf-8")).digest()
    return (int.from_bytes(digest[:8], "big") >> 11) / _SCALE


def unit_hashes(prefix: str, recipient_ids: Sequence[str]) -> np.ndarray:
    """``unit_hash(prefix, r)`` for each recipient id, shape ``(n,)``."""
    sha = hashlib.sha256
    head = (prefix + "|").encode("utf-8")
    out = np.fromiter(
        (int.from_bytes(sha(head + r.encode("utf-8")).digest()[:8], "big") >> 11 for r in recipient_ids),
        dtype=np.float64,
        count=len(recipient_ids),
    )
    return out / _SCALE


def in_holdout(salt: str, recipient_ids: Sequence[str], share: float) -> np.ndarray:
    """Whether each recipient falls in the holdout of size ``share``, shape ``(n,)`` of bool."""
    if share <= 0:
        return np.zeros(len(recipient_ids), dtype=bool)
    return unit_hashes(f"{salt}|holdout", recipient_ids) < share


def bucket_variants(
    salt: str,
    slot: str,
    recipient_ids: Sequence[str],
    variant_ids: Sequence[str],
    weights: Sequence[float] | np.ndarray,
    allowed: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Choose one variant of ``slot`` per recipient by weighted rendezvous hashing.

    Parameters
    ----------
    salt, slot : str
        The experiment's salt and the slot name.
    recipient_ids : sequence of str, length n
    variant_ids : sequence of str, length m
    weights : array of float, shape (m,)
        Non-negative traffic weights.
    allowed : ndarray of bool, shape (n, m), optional
        Variants the rules allow per recipient; each row allows at least one. Where every allowed
        variant has weight zero, the allowed ones are taken as equally weighted.

    Returns
    -------
    index : ndarray of int, shape (n,)
        The chosen variant's position in ``variant_ids``.
    probability : ndarray of float, shape (n,)
        ``w_chosen / sum(w_allowed)``: the probability of that choice over a random recipient.

    Examples
    --------
    >>> idx, p = bucket_variants("exp", "cta", ["r1", "r2"], ["a", "b"], [1.0, 1.0])
    >>> p.tolist()
    [0.5, 0.5]
    """
    n, m = len(recipient_ids), len(variant_ids)
    w = np.asarray(weights, dtype=np.float64).reshape(1, m).repeat(n, axis=0)
    if allowed is not None:
        w = np.where(allowed, w, 0.0)
        dead = w.sum(axis=1) <= 0
        if dead.any():
            w[dead] = allowed[dead].astype(np.float64)
    u = np.column_stack([unit_hashes(f"{salt}|{slot}|{vid}", recipient_ids) for vid in variant_ids])
    with np.errstate(divide="ignore"):
        scores = -np.log1p(-u) / w
    scores[w <= 0] = np.inf
    index = np.argmin(scores, axis=1)
    probability = w[np.arange(n), index] / w.sum(axis=1)
    return index, probability
