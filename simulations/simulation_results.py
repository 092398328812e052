"""What ``run_simulation`` (:mod:`simulations.synthetic`) reports: per policy, per seed, and the A/B test."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from analysis.drift import DriftReport
from simulations.data import SimulationInputError
from simulations.factorial_design import FactorialConclusion


@dataclass(frozen=True)
class PolicyRun:
    """One policy over every seed.

    Attributes
    ----------
    policy : str
    cumulative_reward : ndarray of shape (seeds, waves)
        Realised reward summed up to the end of each wave.
    cumulative_regret : ndarray of shape (seeds, waves)
        Expected regret against the best per-recipient variant, summed up to each wave.
    loser_share : ndarray of shape (seeds,)
        Share of sends to variants other than the best single variant.
    mismatch_share : ndarray of shape (seeds,)
        Share of recipients not sent their own best variant.
    traffic : ndarray of int, shape (seeds, k)
        Sends per variant.
    successes : ndarray of int, shape (seeds, k)
        Responses per variant.
    send_traffic : ndarray of int, shape (seeds, waves, k)
        Sends per variant in each wave.
    posterior : ndarray of float, shape (seeds, 2, k), or None
        With ``timing``: the Beta posterior ``(alpha, beta)`` after the last learning.
    drift : tuple of DriftReport
        With ``timing``: the drift monitor per seed (:mod:`simulations.timed_run`).
    event_counts : dict of str to ndarray of int, shape (seeds, waves)
        With ``timing.event_rates``: per event besides the reward, its events per send (not rewarded).
    """

    policy: str
    cumulative_reward: np.ndarray
    cumulative_regret: np.ndarray
    loser_share: np.ndarray
    mismatch_share: np.ndarray
    traffic: np.ndarray
    successes: np.ndarray
    send_traffic: np.ndarray | None = None
    posterior: np.ndarray | None = None
    drift: tuple[DriftReport, ...] = ()
    event_counts: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def drift_alerts(self) -> np.ndarray:
        """Per seed, whether the drift monitor raised its alert (shape (seeds,); empty without timing)."""
        return np.array([d.alert for d in self.drift], dtype=bool)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready mapping with per-seed values and means."""
        timed: dict[str, object] = {}
        if self.drift:
            timed = {
                "drift_alert_share": float(self.drift_alerts.mean()),
                "first_alarm_send": [d.first_alarm_day for d in self.drift],
                "drift": [d.to_dict() for d in self.drift],
                "posterior": None if self.posterior is None else self.posterior.tolist(),
                "events": {e: {"total_mean": float(c.sum(axis=1).mean()), "per_send": c.tolist()}
                           for e, c in self.event_counts.items()},
            }
        return {
            "policy": self.policy,
            "final_reward_mean": float(self.cumulative_reward[:, -1].mean()),
            "final_regret_mean": float(self.cumulative_regret[:, -1].mean()),
            "final_regret_sd": float(self.cumulative_regret[:, -1].std(ddof=1)) if len(self.loser_share) > 1
            else None,
            "loser_share_mean": float(self.loser_share.mean()),
            "mismatch_share_mean": float(self.mismatch_share.mean()),
            "cumulative_reward": self.cumulative_reward.tolist(),
            "cumulative_regret": self.cumulative_regret.tolist(),
            "loser_share": self.loser_share.tolist(),
            "mismatch_share": self.mismatch_share.tolist(),
            "traffic": self.traffic.tolist(),
            "successes": self.successes.tolist(),
            "send_traffic": None if self.send_traffic is None else self.send_traffic.tolist(),
            **timed,
        }


@dataclass(frozen=True)
class ABConclusion:
    """What a fixed A/B test would have concluded on one seed.

    Attributes
    ----------
    seed : int
    winner, runner_up : str
        The variants with the highest and second-highest observed rates.
    p_value : float
        Two-sided two-proportion z-test of the winner against the runner-up.
    significant : bool
        ``p_value < alpha``: the test would have declared the winner.
    correct : bool
        The winner is the best single variant in truth.
    observed_rates : mapping of str to float
    """

    seed: int
    winner: str
    runner_up: str
    p_value: float
    significant: bool
    correct: bool
    observed_rates: Mapping[str, float]

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready mapping."""
        return {
            "seed": self.seed,
            "winner": self.winner,
            "runner_up": self.runner_up,
            "p_value": self.p_value,
            "significant": self.significant,
            "correct": self.correct,
            "observed_rates": dict(self.observed_rates),
        }


@dataclass(frozen=True)
class SimulationResult:
    """Every policy's run on the same populations.

    Attributes
    ----------
    scenario : str
        The scenario's name.
    variants : tuple of str
    wave_sizes : tuple of int
    seeds : tuple of int
    best_variant : tuple of str
        The best single variant per seed (on that seed's population).
    runs : tuple of PolicyRun
    ab_conclusions : tuple of ABConclusion
        One per seed.
    factorial_conclusions : tuple of FactorialConclusion
        One per seed when ``multivariate`` ran: the factorial model fitted to its counts.
    """

    scenario: str
    variants: tuple[str, ...]
    wave_sizes: tuple[int, ...]
    seeds: tuple[int, ...]
    best_variant: tuple[str, ...]
    runs: tuple[PolicyRun, ...]
    ab_conclusions: tuple[ABConclusion, ...]
    factorial_conclusions: tuple[FactorialConclusion, ...] = ()

    def run(self, policy: str) -> PolicyRun:
        """The run of one policy."""
        for run in self.runs:
            if run.policy == policy:
                return run
        ran = [r.policy for r in self.runs]
        raise SimulationInputError(f"policy: {policy!r} was not simulated; ran {ran}")

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready mapping."""
        conclusions = self.ab_conclusions
        return {
            "scenario": self.scenario,
            "variants": list(self.variants),
            "wave_sizes": list(self.wave_sizes),
            "seeds": list(self.seeds),
            "best_variant": list(self.best_variant),
            "policies": [run.to_dict() for run in self.runs],
            "ab_test": {
                "declared_share": float(np.mean([c.significant for c in conclusions])),
                "correct_share": float(np.mean([c.correct for c in conclusions])),
                "declared_correct_share": float(np.mean([c.significant and c.correct for c in conclusions])),
                "per_seed": [c.to_dict() for c in conclusions],
            },
            **({"multivariate_test": {
                "correct_share": float(np.mean([c.correct for c in self.factorial_conclusions])),
                "per_seed": [c.to_dict() for c in self.factorial_conclusions],
            }} if self.factorial_conclusions else {}),
        }
