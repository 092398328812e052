"""Run a learning experiment through the HTTP API: batches of sends, simulated clicks, a learning run
after each batch. Shared by the HTTP and command-line tests of the adaptive results."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from tests.api.conftest import ADMIN, SEND

#: Two segments; under the contextual policy each gets the variant that suits it.
SEGMENT_TO_RATE = {"x": {"plain": 0.60, "urgent": 0.50}, "y": {"plain": 0.05, "urgent": 0.31}}
#: The true effect of urgent against plain over the population (segments half and half): +0.08.
TRUE_CONTEXTUAL_LIFT = 0.5 * (0.50 - 0.60) + 0.5 * (0.31 - 0.05)


def spec(
    key: str, design: Mapping[str, Any], variants: tuple[str, ...] = ("plain", "urgent")
) -> dict[str, Any]:
    """A one-slot spec that learns from every click at once (no reward delay)."""
    return {
        "key": key,
        "slots": {"subject": {"variants": [{"id": v, "content": f"Subject {v}"} for v in variants]}},
        "design": {**design, "update": {"delay_hours": 0}},
        "reward": {"events": {"click": 1.0}, "guardrails": ["unsubscribe"]},
        "consent": {"missing": "allow"},  # the recipients carry no consent attribute
    }


def run(
    client: Any, key: str, *, batches: int, size: int, seed: int,
    context: Callable[[np.random.Generator], dict[str, Any]],
    click_rate: Callable[[dict[str, Any], str], float],
) -> int:
    """Send ``batches`` batches of ``size`` recipients, post a click with ``click_rate(context, variant)``
    and learn after each. Returns the number of decisions made."""
    rng = np.random.default_rng(seed)
    event = 0
    for b in range(batches):
        contexts = [context(rng) for _ in range(size)]
        recipients = [{"recipient_id": f"{key}-{b}-{i}", "context": c} for i, c in enumerate(contexts)]
        answer = client.post(f"/v1/experiments/{key}/assign/batch", json={"recipients": recipients},
                             headers=SEND)
        assert answer.status_code == 200, answer.text
        events = []
        for c, decision in zip(contexts, answer.json()["decisions"], strict=True):
            if rng.random() < click_rate(c, decision["variants"]["subject"]["id"]):
                event += 1
                events.append({"event_id": f"{key}-e{event}", "decision_id": decision["decision_id"],
                               "type": "click"})
        posted = client.post("/v1/outcomes", json={"events": events}, headers=SEND)
        assert posted.status_code == 200, posted.text
        learned = client.post(f"/v1/experiments/{key}/learn", headers=ADMIN)
        assert learned.status_code == 200, learned.text
    return batches * size


def run_bandit(client: Any, key: str, rates: Mapping[str, float], *, batches: int = 6, size: int = 500,
               seed: int = 1) -> int:
    """A Thompson-sampling experiment over the variants of ``rates`` (variant -> click rate)."""
    created = client.post("/v1/experiments", json=spec(key, {"type": "bandit", "policy": "thompson"},
                                                       tuple(rates)), headers=ADMIN)
    assert created.status_code == 201, created.text
    return run(client, key, batches=batches, size=size, seed=seed, context=lambda rng: {},
               click_rate=lambda c, v: rates[v])


def run_contextual(client: Any, key: str, *, batches: int = 6, size: int = 1000, seed: int = 2) -> int:
    """A linear Thompson-sampling policy on :data:`SEGMENT_TO_RATE`: it learns to send plain to segment
    x and urgent to segment y, so plain's as-allocated rate is mostly x's and urgent's mostly y's."""
    design = {"type": "contextual", "policy": "linear_ts", "context": ["segment"]}
    created = client.post("/v1/experiments", json=spec(key, design), headers=ADMIN)
    assert created.status_code == 201, created.text
    return run(client, key, batches=batches, size=size, seed=seed,
               context=lambda rng: {"segment": "x" if rng.random() < 0.5 else "y"},
               click_rate=lambda c, v: SEGMENT_TO_RATE[c["segment"]][v])
