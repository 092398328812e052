"""Run policies through the real bandit code on a synthetic population, and compare them.

For each seed, one population is drawn (recipients per wave, their features, their true response
probabilities and one uniform number per recipient that decides their outcome under every variant),
so all policies meet the same recipients and the same potential outcomes: the comparison is paired.
Each policy (``bandit.make_policy``; ``ab`` is uniform fixed allocation) then chooses per wave with
``choose``, and learns through ``update`` from outcomes that arrive ``delay`` waves later (each row's
time is its wave's index in days, which policies that forget need).

Reported per policy and seed: cumulative reward (realised), cumulative regret against the best
per-recipient choice (expected, :math:`\\sum_i \\max_a p(x_i, a) - p(x_i, a_i)`), the share of traffic
sent to variants other than the best single variant, the share of recipients not given their own best
variant, and what a fixed A/B test would have concluded from the ``ab`` arm counts (the observed best
arm against the runner-up, a two-proportion z-test).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from analysis.significance import two_proportion_ztest
from analysis.stats import ProportionStats
from bandit import make_policy
from simulations.data import SimulationInputError
from simulations.factorial_design import FactorialConclusion, FactorialDesign, factorial_conclusion
from simulations.scenario import Categorical, Exponential, Normal, Poisson, Scenario, Uniform
from simulations.scenario_timing import PolicySpec
from simulations.simulation_results import ABConclusion, PolicyRun, SimulationResult
from simulations.timed_run import draw_delays, draw_events, run_timed

ProgressCallback = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Population:
    """Recipients of one wave.

    Attributes
    ----------
    contexts : list of dict, length n
        What the policy sees: ``segment`` and the segment's features.
    segments : ndarray of int, shape (n,)
    probabilities : ndarray of float, shape (n, k)
        True response probability of each recipient to each variant.
    uniforms : ndarray of float, shape (n,)
        The recipient responds to variant ``a`` when ``uniforms < probabilities[:, a]``.
    """

    contexts: list[dict[str, Any]]
    segments: np.ndarray
    probabilities: np.ndarray
    uniforms: np.ndarray


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return np.log(p) - np.log1p(-p)


def _draw_feature(feature: object, n: int, rng: np.random.Generator) -> np.ndarray:
    if isinstance(feature, Normal):
        return rng.normal(feature.mean, feature.sd, n)
    if isinstance(feature, Uniform):
        return rng.uniform(feature.low, feature.high, n)
    if isinstance(feature, Exponential):
        return rng.exponential(feature.scale, n)
    if isinstance(feature, Poisson):
        return rng.poisson(feature.lam, n).astype(float)
    if isinstance(feature, Categorical):
        values = list(feature.values)
        probabilities = np.array([feature.values[v] for v in values])
        drawn = rng.choice(len(values), n, p=probabilities / probabilities.sum())
        return np.array(values, dtype=object)[drawn]
    raise SimulationInputError(f"features: unsupported distribution {feature!r}")  # pragma: no cover


def draw_population(scenario: Scenario, n: int, rng: np.random.Generator, send: int = 1) -> Population:
    """Draw ``n`` recipients of a scenario, with their true response probabilities.

    Parameters
    ----------
    scenario : Scenario
    n : int
    rng : numpy.random.Generator
    send : int
        The send (from 1) they belong to: the scenario's ``drift`` moves the rates by it.

    Returns
    -------
    Population
    """
    shares = np.array([s.share for s in scenario.segments])
    segments = rng.choice(len(shares), size=n, p=shares / shares.sum())
    rates = scenario.rates_at(send)
    eta = _logit(rates[segments])
    columns: dict[str, np.ndarray] = {}
    present: dict[str, np.ndarray] = {}
    for index, segment in enumerate(scenario.segments):
        rows = np.flatnonzero(segments == index)
        for name, feature in segment.features.items():
            values = _draw_feature(feature, rows.size, rng)
            if name not in columns:
                columns[name] = np.empty(n, dtype=object if isinstance(feature, Categorical) else float)
                present[name] = np.zeros(n, dtype=bool)
            columns[name][rows] = values
            present[name][rows] = True
    for effect in scenario.effects:
        values, has = columns[effect.feature], present[effect.feature]
        for a in scenario.variant_columns(effect.variant):
            if effect.per_unit is not None:
                eta[has, a] += effect.per_unit * values[has].astype(float)
            else:
                eta[has & (values == effect.equals), a] += effect.log_odds
    probabilities = 1.0 / (1.0 + np.exp(-eta))
    names = [s.name for s in scenario.segments]
    contexts: list[dict[str, Any]] = []
    for i in range(n):
        context: dict[str, Any] = {"segment": names[segments[i]]}
        for name, values in columns.items():
            if present[name][i]:
                value = values[i]
                context[name] = value if isinstance(value, str) else float(value)
        contexts.append(context)
    return Population(contexts, segments, probabilities, rng.random(n))


def _spec(name: str, scenario: Scenario) -> PolicySpec:
    """The scenario's named run, or the policy of that name learning the default way."""
    return scenario.policies.get(name) or PolicySpec(policy="fixed" if name == "ab" else name)


def _policy(name: str, scenario: Scenario, options: Mapping[str, Any], seed: int) -> Any:
    k = len(scenario.variants)
    if name in scenario.policies:
        spec = scenario.policies[name]
        return make_policy(spec.policy, k, options={**spec.options, **options}, seed=seed)
    if name == "multivariate":
        if options:
            raise SimulationInputError(f"policy_options.multivariate: takes no options, got {dict(options)}")
        return FactorialDesign(scenario.slot_sizes)
    if name == "ab":
        return make_policy("fixed", k, options=dict(options), seed=seed)
    return make_policy(name, k, options=dict(options), seed=seed)


def _run_one(
    name: str,
    options: Mapping[str, Any],
    waves: Sequence[Population],
    scenario: Scenario,
    seed: int,
    best_variant: int,
) -> tuple[np.ndarray, ...]:
    policy = _policy(name, scenario, options, seed)
    k, delay = len(scenario.variants), scenario.waves.delay
    rng = np.random.default_rng([seed, 1])
    pending: deque[tuple[int, list[dict[str, Any]], np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = deque()
    reward = np.zeros(len(waves))
    regret = np.zeros(len(waves))
    send_traffic = np.zeros((len(waves), k), dtype=np.int64)
    traffic = np.zeros(k, dtype=np.int64)
    successes = np.zeros(k, dtype=np.int64)
    mismatches = 0
    for w, population in enumerate(waves):
        while pending and pending[0][0] <= w:
            _, contexts, actions, rewards, propensities, times = pending.popleft()
            policy.update(contexts, actions, rewards, propensities, times=times)
        choices = policy.choose(population.contexts, rng)
        actions = np.asarray(choices.actions)
        rows = np.arange(actions.size)
        chosen_p = population.probabilities[rows, actions]
        rewards = (population.uniforms < chosen_p).astype(float)
        best_p = population.probabilities.max(axis=1)
        reward[w] = rewards.sum()
        regret[w] = float(np.sum(best_p - chosen_p))
        send_traffic[w] = np.bincount(actions, minlength=k)
        traffic += send_traffic[w]
        successes += np.bincount(actions, weights=rewards, minlength=k).astype(np.int64)
        mismatches += int(np.count_nonzero(chosen_p < best_p))
        propensities = np.asarray(choices.propensities)
        times = np.full(actions.size, float(w))  # one wave per day: forgetting policies need the age
        pending.append((w + 1 + delay, population.contexts, actions, rewards, propensities, times))
    total = traffic.sum()
    loser = (total - traffic[best_variant]) / total
    mismatch = mismatches / total
    return (np.cumsum(reward), np.cumsum(regret), np.array(loser), np.array(mismatch), traffic, successes,
            send_traffic, None, None, None)


def _run_seed(name: str, options: Mapping[str, Any], waves: Sequence[Population], delays: list[np.ndarray],
              scenario: Scenario, seed: int, best: int,
              events: dict[str, list[tuple[np.ndarray, np.ndarray]]] | None = None) -> tuple[Any, ...]:
    """One policy on one seed: waves (:func:`_run_one`), or a clock and delays (``timing``)."""
    if scenario.timing is None:
        return _run_one(name, options, waves, scenario, seed, best)
    policy = _policy(name, scenario, options, seed)
    run = run_timed(policy, _spec(name, scenario), scenario, waves, delays, np.random.default_rng([seed, 1]),
                    events)
    traffic = run.send_traffic.sum(axis=0)
    total = traffic.sum()
    return (np.cumsum(run.reward), np.cumsum(run.regret), np.array((total - traffic[best]) / total),
            np.array(run.mismatches / total), traffic, run.successes, run.send_traffic, run.posterior,
            run.drift, run.event_counts)


def _ab_conclusion(seed: int, variants: Sequence[str], traffic: np.ndarray, successes: np.ndarray,
                   best: int, alpha: float) -> ABConclusion:
    rates = np.divide(successes, traffic, out=np.zeros(len(variants)), where=traffic > 0)
    order = np.argsort(-rates, kind="stable")
    winner, runner_up = int(order[0]), int(order[1])
    test = two_proportion_ztest(
        ProportionStats(int(traffic[runner_up]), int(successes[runner_up])),
        ProportionStats(int(traffic[winner]), int(successes[winner])),
    )
    return ABConclusion(
        seed=seed,
        winner=variants[winner],
        runner_up=variants[runner_up],
        p_value=float(test.p_value),
        significant=bool(test.p_value < alpha),
        correct=winner == best,
        observed_rates={v: float(r) for v, r in zip(variants, rates, strict=True)},
    )


def run_simulation(
    scenario: Scenario,
    policies: Sequence[str] = ("ab", "thompson", "ucb", "vw"),
    seeds: int | Sequence[int] = 5,
    *,
    policy_options: Mapping[str, Mapping[str, Any]] | None = None,
    on_progress: ProgressCallback | None = None,
) -> SimulationResult:
    """Run policies on the same synthetic populations and seeds.

    Parameters
    ----------
    scenario : Scenario
    policies : sequence of str
        ``ab`` (uniform fixed allocation) or any ``bandit.make_policy`` name (``thompson``, ``ucb``,
        ``epsilon_greedy``, ``gaussian_thompson``, ``linear_ts``, ``linucb``, ``vw``, ``fixed``).
        ``multivariate`` is the full factorial over the scenario's ``slots``: each slot's variant is
        drawn independently and uniformly and the arm is the combination (a scenario without slots is
        one slot); its counts are also analysed as a factorial (``factorial_conclusions``).
    seeds : int or sequence of int
        A count (seeds ``0 .. seeds-1``) or the seeds themselves. Seed ``s`` draws the population
        from ``default_rng([s, 0])`` and the policies' choices from ``default_rng([s, 1])``.
    policy_options : mapping, optional
        ``policy -> options`` passed to ``make_policy``.
    on_progress : callable, optional
        Called as ``on_progress(policy, done, total)`` after each policy run (for progress bars).

    Returns
    -------
    SimulationResult
    """
    if isinstance(policies, str) or not policies:
        raise SimulationInputError("policies: expected a non-empty list of policy names")
    if len(set(policies)) != len(policies):
        raise SimulationInputError(f"policies: duplicate names in {list(policies)}")
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not seed_list:
        raise SimulationInputError("seeds: at least one seed is needed")
    options = dict(policy_options or {})
    unknown = [p for p in options if p not in policies]
    if unknown:
        raise SimulationInputError(f"policy_options: options for policies not run: {unknown}")
    for name in policies:  # fail fast on unknown names or options, before any simulation
        _policy(name, scenario, options.get(name, {}), 0)
    sizes = scenario.waves.wave_sizes
    per_policy: dict[str, list[tuple[np.ndarray, ...]]] = {p: [] for p in policies}
    best_variants: list[int] = []
    conclusions: list[ABConclusion] = []
    factorial: list[FactorialConclusion] = []
    done, total = 0, len(seed_list) * len(policies)
    for seed in seed_list:
        rng = np.random.default_rng([seed, 0])
        waves = [draw_population(scenario, size, rng, send) for send, size in enumerate(sizes, start=1)]
        delays = [] if scenario.timing is None else draw_delays(scenario, sizes, rng)
        events = (None if scenario.timing is None
                  else draw_events(scenario, sizes, np.random.default_rng([seed, 2])))
        mean_p = np.concatenate([w.probabilities for w in waves]).mean(axis=0)
        best = int(np.argmax(mean_p))
        best_variants.append(best)
        ab_result = None
        for name in policies:
            result = _run_seed(name, options.get(name, {}), waves, delays, scenario, seed, best, events)
            per_policy[name].append(result)
            if name == "ab":
                ab_result = result
            if name == "multivariate":
                factorial.append(factorial_conclusion(
                    seed, scenario.slots or {"variant": list(scenario.variants)}, scenario.variants,
                    result[4], result[5], best, scenario.alpha,
                ))
            done += 1
            if on_progress is not None:
                on_progress(name, done, total)
        if ab_result is None:
            ab_result = _run_seed("ab", {}, waves, delays, scenario, seed, best, events)
        conclusions.append(
            _ab_conclusion(seed, scenario.variants, ab_result[4], ab_result[5], best, scenario.alpha)
        )
    runs = tuple(
        PolicyRun(
            policy=name,
            cumulative_reward=np.stack([r[0] for r in results]),
            cumulative_regret=np.stack([r[1] for r in results]),
            loser_share=np.array([float(r[2]) for r in results]),
            mismatch_share=np.array([float(r[3]) for r in results]),
            traffic=np.stack([r[4] for r in results]),
            successes=np.stack([r[5] for r in results]),
            send_traffic=np.stack([r[6] for r in results]),
            posterior=np.stack([r[7] for r in results]) if results[0][7] is not None else None,
            drift=tuple(r[8] for r in results if r[8] is not None),
            event_counts={e: np.stack([r[9][e] for r in results]) for e in (results[0][9] or {})},
        )
        for name, results in per_policy.items()
    )
    return SimulationResult(
        scenario=scenario.name,
        variants=tuple(scenario.variants),
        wave_sizes=tuple(sizes),
        seeds=tuple(seed_list),
        best_variant=tuple(scenario.variants[b] for b in best_variants),
        runs=runs,
        ab_conclusions=tuple(conclusions),
        factorial_conclusions=tuple(factorial),
    )

