"""Sticky hashing: ratios within sampling error, stickiness, and minimal movement when weights change.

Allocation is checked by a two-sided proportion z-test at |z| < 4 (PlanOut-style), one test per
variant over 40,000 recipient ids.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from experiments.hashing import bucket_variants, in_holdout, unit_hash, unit_hashes

N = 40_000
IDS = [f"user-{i}" for i in range(N)]
Z = 4.0


def z_score(count: int, n: int, p: float) -> float:
    return (count - n * p) / np.sqrt(n * p * (1 - p))


def test_unit_hash_is_the_top_53_bits_of_sha256() -> None:
    # closed form, computed directly with hashlib
    digest = hashlib.sha256(b"spring|cta|shop|user-1").digest()
    expected = (int.from_bytes(digest[:8], "big") >> 11) / 2**53
    assert unit_hash("spring", "cta", "shop", "user-1") == expected
    batch = unit_hashes("spring|cta|shop", IDS[:50])
    assert batch.tolist() == [unit_hash("spring", "cta", "shop", r) for r in IDS[:50]]


def test_unit_hashes_look_uniform() -> None:
    from scipy import stats

    u = unit_hashes("salt|x", IDS)
    assert u.min() >= 0 and u.max() < 1
    assert stats.kstest(u, "uniform").pvalue > 1e-4


@pytest.mark.parametrize("weights", [[1, 1], [1, 2, 1], [3, 1, 0.5, 0.5]])
def test_allocation_ratios_within_sampling_error(weights: list[float]) -> None:
    ids = [f"v{k}" for k in range(len(weights))]
    index, prob = bucket_variants("exp", "cta", IDS, ids, weights)
    shares = np.asarray(weights) / np.sum(weights)
    counts = np.bincount(index, minlength=len(weights))
    for k, p in enumerate(shares):
        assert abs(z_score(int(counts[k]), N, p)) < Z, (k, counts[k], N * p)
    np.testing.assert_allclose(prob, shares[index])


def test_assignment_is_sticky_and_independent_of_the_batch() -> None:
    ids = ["a", "b", "c"]
    first, _ = bucket_variants("exp", "cta", IDS[:1000], ids, [1, 1, 1])
    again, _ = bucket_variants("exp", "cta", IDS[:1000], ids, [1, 1, 1])
    reordered, _ = bucket_variants("exp", "cta", IDS[:1000][::-1], ids, [1, 1, 1])
    alone = [bucket_variants("exp", "cta", [r], ids, [1, 1, 1])[0][0] for r in IDS[:50]]
    assert np.array_equal(first, again)
    assert np.array_equal(first, reordered[::-1])
    assert np.array_equal(first[:50], alone)


def test_slots_and_experiments_hash_independently() -> None:
    a, _ = bucket_variants("exp", "cta", IDS, ["x", "y"], [1, 1])
    b, _ = bucket_variants("exp", "subject", IDS, ["x", "y"], [1, 1])
    c, _ = bucket_variants("other", "cta", IDS, ["x", "y"], [1, 1])
    for other in (b, c):  # agreement of two independent fair coins: 1/2
        assert abs(z_score(int(np.sum(a == other)), N, 0.5)) < Z


def test_raising_a_weight_moves_only_recipients_into_that_variant_and_only_as_many_as_needed() -> None:
    ids = ["a", "b", "c"]
    before, _ = bucket_variants("exp", "cta", IDS, ids, [1, 1, 1])
    after, _ = bucket_variants("exp", "cta", IDS, ids, [1, 1, 2])
    moved = before != after
    assert np.all(after[moved] == 2)  # every move goes to the variant that gained traffic
    # the least possible movement is the share gained: 2/4 - 1/3 = 1/6
    assert abs(z_score(int(moved.sum()), N, 0.5 - 1 / 3)) < Z


def test_adding_a_variant_takes_recipients_only_into_the_new_one() -> None:
    before, _ = bucket_variants("exp", "cta", IDS, ["a", "b"], [1, 1])
    after, _ = bucket_variants("exp", "cta", IDS, ["a", "b", "c"], [1, 1, 1])
    moved = before != after
    assert np.all(after[moved] == 2)
    assert abs(z_score(int(moved.sum()), N, 1 / 3)) < Z


def test_cumulative_intervals_would_move_more() -> None:
    # the naive alternative: one uniform split into consecutive intervals; same change of weights
    u = unit_hashes("exp|cta", IDS)
    before = np.searchsorted(np.cumsum([1, 1, 1]) / 3, u, side="right")
    after = np.searchsorted(np.cumsum([1, 1, 2]) / 4, u, side="right")
    # a: [0,1/3) -> [0,1/4), b: [1/3,2/3) -> [1/4,1/2), c: [2/3,1) -> [1/2,1): recipients in
    # [1/4,1/3) move a->b and in [1/2,2/3) move b->c: 1/12 + 1/6 = 1/4, against 1/6 by rendezvous
    moved = before != after
    assert abs(z_score(int(moved.sum()), N, 1 / 4)) < Z
    assert np.any(after[moved] == 1)  # and some move between variants whose weight did not change


def test_rules_renormalise_and_keep_allowed_recipients_in_place() -> None:
    ids = ["a", "b", "c"]
    free, _ = bucket_variants("exp", "cta", IDS, ids, [2, 1, 1])
    allowed = np.ones((N, 3), dtype=bool)
    allowed[:, 0] = False
    restricted, prob = bucket_variants("exp", "cta", IDS, ids, [2, 1, 1], allowed)
    assert not np.any(restricted == 0)
    kept = free != 0
    assert np.array_equal(restricted[kept], free[kept])
    np.testing.assert_allclose(prob, 0.5)
    assert abs(z_score(int(np.sum(restricted == 1)), N, 0.5)) < Z


def test_zero_weights() -> None:
    index, prob = bucket_variants("exp", "cta", IDS[:2000], ["a", "b"], [0, 1])
    assert np.all(index == 1) and np.all(prob == 1)
    only_zero = np.array([[True, False]] * 2000)  # a rule forces the zero-weight variant
    index, prob = bucket_variants("exp", "cta", IDS[:2000], ["a", "b"], [0, 1], only_zero)
    assert np.all(index == 0) and np.all(prob == 1)


def test_holdout_share_and_stickiness() -> None:
    held = in_holdout("exp", IDS, 0.05)
    assert abs(z_score(int(held.sum()), N, 0.05)) < Z
    assert np.array_equal(held, in_holdout("exp", IDS, 0.05))
    bigger = in_holdout("exp", IDS, 0.10)
    assert np.all(bigger[held])  # growing the holdout only adds recipients
    assert not in_holdout("exp", IDS, 0.0).any()
