"""A toy audience for ``sendlab demo``: recipients with a context, and how they respond to each email.

The responses are made up (the demo must show a bandit finding something): urgent subjects work on
mobile, the personal subject works for loyal customers, "See the collection" works on desktop.
Everything is drawn from the generator passed in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

DEVICES = ("mobile", "desktop")
SEGMENTS = ("new", "loyal", "lapsed")
LOCATIONS = ("CA", "NY", "TX", "WA")
CATEGORIES = ("outdoor", "home", "fashion")
FIRST_NAMES = ("Ana", "Ben", "Chloé", "Dev", "Emma", "Farid")


@dataclass(frozen=True)
class SimulatedOutcome:
    """What one recipient did with the email."""

    clicked: bool
    converted: bool
    revenue: float
    unsubscribed: bool


def draw_contexts(rng: np.random.Generator, n: int) -> list[dict[str, Any]]:
    """``n`` recipients' contexts (98% consented)."""
    device = rng.choice(DEVICES, size=n, p=[0.6, 0.4])
    segment = rng.choice(SEGMENTS, size=n, p=[0.3, 0.5, 0.2])
    location = rng.choice(LOCATIONS, size=n)
    category = rng.choice(CATEGORIES, size=n)
    recency = rng.integers(0, 120, size=n)
    name = rng.choice(FIRST_NAMES, size=n)
    consent = rng.random(n) < 0.98
    return [
        {
            "device": str(device[i]), "segment": str(segment[i]), "location": str(location[i]),
            "last_category": str(category[i]), "recency_days": int(recency[i]),
            "first_name": str(name[i]), "consent": bool(consent[i]),
        }
        for i in range(n)
    ]


def click_probability(context: Mapping[str, Any], variants: Mapping[str, str]) -> float:
    """The made-up click probability of one recipient for one combination of variants."""
    p = 0.03
    subject, cta = variants.get("subject"), variants.get("cta")
    if subject == "urgent":
        p += 0.02 if context["device"] == "mobile" else -0.005
    if subject == "personal":
        p += 0.025 if context["segment"] == "loyal" else 0.0
    if cta == "see":
        p += 0.01 if context["device"] == "desktop" else -0.005
    if context["recency_days"] > 90:
        p *= 0.6
    return float(np.clip(p, 0.001, 0.5))


def simulate_outcomes(
    rng: np.random.Generator,
    contexts: Sequence[Mapping[str, Any]],
    variants: Sequence[Mapping[str, str]],
) -> list[SimulatedOutcome]:
    """One draw of every recipient's response to the variants they got."""
    n = len(contexts)
    p_click = np.array([click_probability(c, v) for c, v in zip(contexts, variants, strict=True)])
    clicked = rng.random(n) < p_click
    converted = clicked & (rng.random(n) < 0.2)
    revenue = np.where(converted, rng.lognormal(mean=3.8, sigma=0.5, size=n), 0.0)
    p_unsub = np.array([0.004 if v.get("subject") == "urgent" else 0.002 for v in variants])
    unsubscribed = rng.random(n) < p_unsub
    return [
        SimulatedOutcome(
            bool(clicked[i]), bool(converted[i]), round(float(revenue[i]), 2), bool(unsubscribed[i])
        )
        for i in range(n)
    ]
