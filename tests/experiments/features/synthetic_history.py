"""Synthetic purchase histories whose conversion signal is known."""

from __future__ import annotations

import numpy as np
import pandas as pd

START = pd.Timestamp("2023-01-01", tz="UTC")
DAYS = 540
AS_OF = START + pd.Timedelta(days=DAYS)
HORIZON = 60
SPLIT = AS_OF - pd.Timedelta(days=HORIZON)


def _events(rng: np.random.Generator, owners: np.ndarray, kind: str, low: float, high: float) -> pd.DataFrame:
    days = rng.uniform(low, high, len(owners))
    amounts = np.round(rng.gamma(2.0, 25.0, len(owners)), 2) if kind == "purchase" else np.nan
    return pd.DataFrame({"recipient_id": [f"r{i}" for i in owners],
                         "timestamp": START + pd.to_timedelta(days, unit="D"),
                         "type": kind, "amount": amounts})


def history_with_signal(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Each recipient buys as a Poisson process of rate ``rate`` per day (Gamma(0.5, 1/30): mean one
    purchase in 60 days, very uneven), opens at three times that rate plus a little, and bounces
    at random (independently of the rate). Returns the events and each recipient's rate."""
    rng = np.random.default_rng(seed)
    rate = rng.gamma(0.5, 1 / 30, n)
    ids = np.arange(n)
    parts = [
        _events(rng, np.repeat(ids, rng.poisson(rate * DAYS)), "purchase", 0, DAYS),
        _events(rng, np.repeat(ids, rng.poisson(3 * rate * DAYS + 2)), "open", 0, DAYS),
        _events(rng, np.repeat(ids, rng.poisson(3, n)), "bounce", 0, DAYS),
    ]
    return pd.concat(parts, ignore_index=True), rate


def history_without_signal(n: int, seed: int, rate_of_buying: float = 0.3) -> pd.DataFrame:
    """The same past, but after ``SPLIT`` each recipient buys once with probability ``rate_of_buying``,
    whatever their past, and does nothing else."""
    rng = np.random.default_rng(seed)
    events, _ = history_with_signal(n, seed)
    past = events[events["timestamp"] <= SPLIT]
    buyers = np.flatnonzero(rng.random(n) < rate_of_buying)
    later = _events(rng, buyers, "purchase", DAYS - HORIZON + 1e-6, DAYS)
    return pd.concat([past, later], ignore_index=True)
