"""Contexts as mappings, arrays and DataFrames hash the same, checked per column, with the same errors."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bandit import LinearThompson, LinUCB, PolicyError
from bandit.features import FeatureHasher


def reference_encode(rows: list[dict], dim: int) -> np.ndarray:
    """The documented rule, row by row: blake2b-64 of the token, bit 0 the sign, column 1 + rest % (dim-1)."""
    def slot(token: str) -> tuple[int, float]:
        value = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "little")
        return 1 + (value >> 1) % (dim - 1), 1.0 if value & 1 else -1.0

    out = np.zeros((len(rows), dim))
    out[:, 0] = 1.0
    for i, row in enumerate(rows):
        for name, value in row.items():
            if value is None:
                continue
            if isinstance(value, bool | np.bool_):
                column, sign = slot(f"{name}={'true' if value else 'false'}")
                out[i, column] += sign
            elif isinstance(value, str):
                column, sign = slot(f"{name}={value}")
                out[i, column] += sign
            else:
                column, sign = slot(name)
                out[i, column] += sign * float(value)
    return out


values = st.one_of(st.none(), st.booleans(), st.sampled_from(["a", "b", "ios", "é"]),
                   st.integers(-1000, 1000), st.floats(-1e6, 1e6, allow_nan=False))


@settings(max_examples=80, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(["seg", "device", "recency", "vip"]), values, max_size=4),
                max_size=12))
def test_mappings_of_any_shape_encode_as_the_row_by_row_rule(rows):
    np.testing.assert_allclose(FeatureHasher(16).encode(rows), reference_encode(rows, 16), rtol=1e-15)


def test_an_array_is_a_batch_of_features_named_by_column():
    array = np.random.default_rng(0).random((50, 3))
    rows = [{"x0": a, "x1": b, "x2": c} for a, b, c in array.tolist()]
    np.testing.assert_array_equal(FeatureHasher(8).encode(array), reference_encode(rows, 8))


def test_a_data_frame_encodes_like_its_records():
    frame = pd.DataFrame({"segment": ["a", "b", None, "a"], "recency": [0.5, 1.0, 2.0, 3.0],
                          "vip": [True, False, True, True], "orders": [1, 2, 3, 4]})
    rows = frame.to_dict("records")
    rows[2]["segment"] = None  # pandas marks the missing text NaN; the frame path reads it as missing
    np.testing.assert_array_equal(FeatureHasher(32).encode(frame), reference_encode(rows, 32))


@pytest.mark.parametrize(
    ("contexts", "message"),
    [
        (np.array([[0.5, np.nan]]), r"contexts\[0\]: feature 'x1' must be finite, got nan"),
        (np.array([["a", "b"]]), "contexts: an array of contexts must hold numbers"),
        (np.zeros(3), "contexts: an array of contexts must have 2 dimensions"),
        (pd.DataFrame({"recency": [1.0, np.inf]}), r"contexts\[1\]: feature 'recency' must be finite"),
        ([{"a": 1.0}, {"a": float("nan")}], r"contexts\[1\]: feature 'a' must be finite, got nan"),
        ([{"a": 1.0}, {"a": [1]}], r"contexts\[1\]: feature 'a' must be a float, int, str, bool or None"),
        ([{"a": 1.0}, {3: "x"}], r"contexts\[1\]: feature names must be non-empty strings, got 3"),
    ],
)
def test_bad_batches_name_the_row_and_feature(contexts, message):
    with pytest.raises(PolicyError, match=message):
        FeatureHasher(8).encode(contexts)


@pytest.mark.parametrize("policy_cls", [LinUCB, LinearThompson])
def test_one_encoding_serves_choose_and_update_alike(policy_cls):
    rng = np.random.default_rng(1)
    array = rng.random((200, 3))
    rows = [{"x0": a, "x1": b, "x2": c} for a, b, c in array.tolist()]
    by_rows, by_encoding = policy_cls(4, dim=8), policy_cls(4, dim=8)
    for _ in range(3):
        actions, rewards = rng.integers(0, 4, 200), rng.random(200)
        encoded = by_encoding.encode(array)
        np.testing.assert_array_equal(by_rows.probabilities(rows), by_encoding.probabilities(encoded))
        by_rows.update(rows, actions, rewards, np.full(200, 0.25))
        by_encoding.update(encoded, actions, rewards, np.full(200, 0.25))
    assert by_rows.to_bytes() == by_encoding.to_bytes()


def test_an_encoding_of_another_width_is_refused():
    encoded = LinUCB(3, dim=8).encode([{"a": 1.0}])
    with pytest.raises(PolicyError, match="contexts: encoded with dim 8, the policy has dim 16"):
        LinUCB(3, dim=16).probabilities(encoded)
