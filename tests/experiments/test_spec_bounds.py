"""A spec's size is bounded per design type, with the reason, before anything is built for it."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest

from experiments.errors import SpecError
from experiments.limits import MAX_ARMS_BY_DESIGN, MAX_SLOTS, MAX_VARIANTS_PER_SLOT
from experiments.spec import parse_spec

POLICY = {"ab": None, "multivariate": None, "bandit": "thompson", "contextual": "linear_ts"}


def spec(kind: str, sizes: list[int]) -> dict[str, Any]:
    design: dict[str, Any] = {"type": kind}
    if POLICY[kind]:
        design["policy"] = POLICY[kind]
    if kind == "contextual":
        design["context"] = ["device"]
    slots = {f"s{i}": {"variants": [{"id": f"v{j}"} for j in range(n)]} for i, n in enumerate(sizes)}
    return {"key": "big", "slots": slots, "design": design}


def problems(raw: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(SpecError) as info:
        parse_spec(raw)
    return [(p.path, p.message) for p in info.value.problems]


# (design, slot sizes at the bound, slot sizes one step beyond it)
CASES = [
    ("multivariate", [4] * 6, [4] * 7),      # 4,096 and 16,384 arms (the 7 x 4)
    ("ab", [2] * 12, [2] * 13),
    ("bandit", [4] * 4, [4] * 4 + [2]),      # 256 and 512
    ("contextual", [8, 8], [8, 8, 2]),       # 64 and 128
]


@pytest.mark.parametrize(("kind", "fits", "beyond"), CASES)
def test_arms_are_bounded_per_design_type_with_the_reason(kind: str, fits: list[int], beyond: list[int]):
    assert parse_spec(spec(kind, fits)).design.type == kind
    bound = MAX_ARMS_BY_DESIGN[kind]
    ((path, message),) = problems(spec(kind, beyond))
    assert path == "slots"
    assert f"at most {bound:,} arms" in message
    assert f"this spec has {math.prod(beyond):,}" in message
    assert "every arm" in message or "counts per arm" in message  # the reason


def test_twenty_slots_are_refused_at_once_without_building_arms() -> None:
    start = time.perf_counter()
    ((path, message),) = problems(spec("multivariate", [4] * 20))  # 4^20 arms: 8 TiB as a table
    assert time.perf_counter() - start < 0.5
    assert path == "slots" and "1,099,511,627,776" in message


def test_slots_and_variants_per_slot_are_bounded() -> None:
    assert problems(spec("multivariate", [1] * (MAX_SLOTS + 1))) == [
        ("slots", f"at most {MAX_SLOTS} slots, got {MAX_SLOTS + 1}")
    ]
    too_many = MAX_VARIANTS_PER_SLOT + 1
    assert problems(spec("ab", [too_many])) == [
        ("slots.s0.variants", f"at most {MAX_VARIANTS_PER_SLOT} variants per slot, got {too_many}")
    ]
