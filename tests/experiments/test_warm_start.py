"""Warm start of contextual policies (linear Thompson sampling, Vowpal Wabbit) through the service.

The incumbent: variant ``y`` by default, ``x`` forced for tablets by a rule. In this world the incumbent
is right (``y`` earns for phones and desktops, ``x`` for tablets), so the apprentice, learning only from
the incumbent's decisions, comes to agree with it and graduates once its agreement over the last
``min_decisions`` passes the spec's threshold.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from experiments.models import OutcomeEvent
from experiments.service import ExperimentService
from experiments.spec import parse_spec
from tests.experiments.conftest import Clock

TABLET_SHARE = 0.1

# policy -> (design, the threshold it passes once trained, one it cannot pass)
POLICIES = {
    # linear TS: its doubt about the variant it never saw for a recipient (scale 0.3) keeps the trained
    # policy's agreement near 0.9 here (0.90 and 0.92 with two seeds of this world)
    "linear_ts": ({"policy": "linear_ts", "options": {"scale": 0.3, "n_draws": 2000}}, 0.8, 0.95),
    # VW with epsilon 0.05 over two allowed variants: its best guess gets at most 0.975, so with ~10%
    # tablets (agreement 1: the rule leaves only x) the agreement stays below 0.98
    "vw": ({"policy": "vw", "vw_args": "--cb_explore_adf --epsilon 0.05 -q UA"}, 0.9, 0.98),
}


def warm_spec(key: str, policy: str, agreement: float) -> Any:
    return parse_spec({
        "key": key,
        "slots": {"subject": {"variants": [{"id": "x", "content": "X"}, {"id": "y", "content": "Y"}]}},
        "consent": {"missing": "allow"},
        "design": {"type": "contextual", "context": ["device"], **POLICIES[policy][0],
                   "update": {"delay_hours": 0},
                   "warm_start": {"agreement": agreement, "min_decisions": 300}},
        "default": {"subject": "y"},
        "rules": [{"when": {"attr": "device", "op": "eq", "value": "tablet"}, "force": {"subject": "x"}}],
        "reward": {"events": {"click": 1.0}},
    })


def send(service: ExperimentService, keys: list[str], tag: str, n: int, rng: np.random.Generator) -> list:
    """The same recipients to each experiment; clicks from the world. Returns (decisions, devices)."""
    devices = rng.choice(["mobile", "desktop", "tablet"], n, p=[0.45, 0.45, TABLET_SHARE])
    uniform = rng.random(n)
    recipients = [(f"{tag}{i}", {"device": str(d)}) for i, d in enumerate(devices)]
    out = []
    for key in keys:
        decisions = service.assign_batch(key, recipients)
        good = np.array([(d.variants["subject"].id == "x") == (device == "tablet")
                         for d, device in zip(decisions, devices, strict=True)])
        clicked = uniform < np.where(good, 0.9, 0.1)
        service.record_outcomes([OutcomeEvent(f"click-{d.decision_id}", d.decision_id, "click")
                                 for d, c in zip(decisions, clicked, strict=True) if c])
        out.append((decisions, devices))
    return out


@pytest.mark.parametrize("policy", list(POLICIES))
def test_a_contextual_apprentice_learns_beside_the_incumbent_and_graduates(
    service: ExperimentService, clock: Clock, policy: str
) -> None:
    keys = ["warm", "strict"]
    _, threshold, unreachable = POLICIES[policy]
    assert service.create(warm_spec("warm", policy, agreement=threshold)).apprentice
    assert service.create(warm_spec("strict", policy, agreement=unreachable)).apprentice
    rng = np.random.default_rng(3)

    first = send(service, keys, "one-", 400, rng)
    for decisions, devices in first:  # recipients get the incumbent's choice, for sure
        for d, device in zip(decisions, devices, strict=True):
            assert d.reason == "apprentice" and d.propensity == 1.0
            assert d.variants["subject"].id == ("x" if device == "tablet" else "y")
    tablets = float(np.mean(first[0][1] == "tablet"))
    untrained = service.summarize("warm")
    assert untrained.apprentice_decisions == 400
    # untrained, both policies split phones and desktops evenly; tablets can only get x (agreement 1)
    assert untrained.apprentice_agreement == pytest.approx(tablets + (1 - tablets) * 0.5, abs=0.03)
    service.learn("warm")
    service.learn("strict")
    assert service.get("warm").apprentice  # its last 300 decisions were judged by the untrained policy

    clock.advance(hours=1)
    send(service, keys, "two-", 400, rng)
    trained = service.summarize("warm")
    assert trained.apprentice_decisions == 800
    service.learn("warm")
    service.learn("strict")
    assert not service.get("warm").apprentice  # the last 300 agree often enough: it graduated
    assert service.get("strict").apprentice  # the same learning, a threshold it cannot reach
    recent = service.summarize("strict")
    late_agreement = (recent.apprentice_agreement * 800 - untrained.apprentice_agreement * 400) / 400
    assert threshold <= late_agreement < unreachable  # ... between the two thresholds

    third = send(service, keys, "three-", 200, rng)
    assert {d.reason for d in third[0][0]} == {"policy"}  # graduated: the policy chooses
    assert {d.reason for d in third[1][0]} == {"apprentice"}
    assert service.summarize("warm").apprentice_decisions == 800  # no more apprentice decisions
