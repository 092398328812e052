"""Regenerate the example logs and probability file: ``python simulations/examples/make_examples.py``.

The true click rate of a send is ``0.05`` for plain, ``0.07 - 0.0008 * recency_days`` for urgent and
``0.06`` for emoji plus ``0.05`` on iOS. The logging policy favoured urgent on mobile. The external
policy in probabilities.csv sends emoji on iOS and urgent elsewhere with probability 0.9.

The same 4,000 sends are written twice:

- ``sends.parquet`` and ``sends.csv`` in SendLab's own log columns (``decision_id``, ``created_at``,
  ``action``, ``propensity``, ``reward``, ``context.device``, ``context.recency_days``), which
  ``sendlab replay`` reads without a column map;
- ``foreign_sends.csv`` as another tool might export them (``send_id``, ``subject_variant``,
  ``logged_prob``, ``clicked``, ``device``, ``recency_days``), read through ``columns.yaml``.

``history.csv`` is a purchase and engagement history of 300 recipients over 2023-01-01 to 2024-06-10
(``recipient_id``, ``timestamp``, ``type``, ``amount``) for ``sendlab features compute``: each recipient
buys at a rate of their own (a Gamma draw: mean one purchase in 60 days), opens at three times it, and
clicks on a quarter of their opens.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def main(folder: Path = Path(__file__).resolve().parent) -> None:
    rng = np.random.default_rng(2026)
    n = 4000
    device = rng.choice(["ios", "android", "web"], n, p=[0.45, 0.35, 0.2])
    recency = np.round(rng.exponential(12, n), 1)
    variants = np.array(["plain", "urgent", "emoji"])
    probs = np.where((device != "web")[:, None], [0.2, 0.6, 0.2], [0.4, 0.3, 0.3])
    u = rng.random(n)
    idx = (u[:, None] > np.cumsum(probs, axis=1)).sum(axis=1)
    base = np.array([0.05, 0.07, 0.06])
    rate = base[idx] + np.where((device == "ios") & (idx == 2), 0.05, 0) - 0.0008 * recency * (idx == 1)
    clicked = (rng.random(n) < np.clip(rate, 0, 1)).astype(int)
    sent = pd.Timestamp("2026-03-02 09:00", tz="UTC") + pd.to_timedelta(np.arange(n) * 15, unit="s")
    sendlab = pd.DataFrame({
        "decision_id": [f"d{i:05d}" for i in range(1, n + 1)],
        "created_at": sent,
        "action": variants[idx],
        "propensity": probs[np.arange(n), idx],
        "reward": clicked.astype(float),
        "context.device": device,
        "context.recency_days": recency,
    })
    sendlab.to_parquet(folder / "sends.parquet", index=False)
    sendlab.to_csv(folder / "sends.csv", index=False)
    foreign = pd.DataFrame({
        "send_id": np.arange(1, n + 1),
        "subject_variant": variants[idx],
        "logged_prob": probs[np.arange(n), idx],
        "clicked": clicked,
        "device": device,
        "recency_days": recency,
    })
    foreign.to_csv(folder / "foreign_sends.csv", index=False)
    p = np.full((n, 3), 0.05)
    p[np.arange(n), np.where(device == "ios", 2, 1)] = 0.9
    pd.DataFrame(p, columns=variants).round(4).to_csv(folder / "probabilities.csv", index=False)
    write_history(folder)


def write_history(folder: Path) -> None:
    rng = np.random.default_rng(2024)
    n, days = 300, 526
    start = pd.Timestamp("2023-01-01", tz="UTC")
    rate = rng.gamma(0.5, 1 / 30, n)
    parts = []
    for kind, expected in (("purchase", rate * days), ("open", 3 * rate * days + 1),
                           ("click", 0.75 * rate * days)):
        owners = np.repeat(np.arange(n), rng.poisson(expected))
        seconds = rng.integers(0, days * 86_400, len(owners))
        parts.append(pd.DataFrame({
            "recipient_id": [f"c{i:04d}" for i in owners],
            "timestamp": (start + pd.to_timedelta(seconds, unit="s")).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "type": kind,
            "amount": np.round(rng.gamma(2.0, 25.0, len(owners)), 2) if kind == "purchase" else np.nan,
        }))
    history = pd.concat(parts).sort_values(["timestamp", "recipient_id"], kind="stable")
    history.to_csv(folder / "history.csv", index=False)


if __name__ == "__main__":
    main()
