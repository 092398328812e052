"""Results of one slot of an experiment: every variant against control, on every metric.

:func:`analyze_slot` is the one call the API makes. It combines the building blocks of this package:
z / Fisher / Welch tests with Holm or Benjamini-Hochberg corrections, lift intervals, the Bayesian
models, the always-valid sequential test, the sample-ratio check and the guardrails, and states a
decision in words (:mod:`analysis.decisions`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from analysis.bayesian import Posterior, mean_posterior, rate_posterior, summarise_posteriors
from analysis.cuped import adjust_arms, cuped_theta
from analysis.decisions import Decision, decide
from analysis.errors import AnalysisInputError
from analysis.json_ready import to_jsonable
from analysis.lift import (
    MeanEstimate,
    absolute_lift,
    check_alpha,
    rate_difference_score,
    rate_ratio_score,
    relative_lift,
)
from analysis.multiplicity import Correction, adjust_p_values
from analysis.noninferiority import NonInferiorityResult, check_noninferiority
from analysis.sequential import DEFAULT_TUNING_N, SequentialResult, msprt, stopping_rule
from analysis.significance import (
    SignificanceResult,
    chi_square_test,
    compare_rates,
    skewness_note,
    welch_df,
    welch_test,
)
from analysis.srm import SRM_THRESHOLD, SrmResult, check_sample_ratio, sample_ratio_not_applicable
from analysis.stats import ProportionStats, RegressionStats, SampleStats

MetricKind = Literal["rate", "value"]


@dataclass(frozen=True)
class ArmData:
    """One arm (variant) of a slot, as summary statistics.

    Parameters
    ----------
    variant : str
        The variant's id.
    n : int
        Units (decisions) assigned to it.
    event_counts : Mapping[str, int]
        Units with at least one event of each type (``open``, ``click``, ``unsubscribe``, ...); a type
        that is missing counts 0.
    value : SampleStats
        The value metric per unit (reward or revenue), over all ``n`` units, zeros included.
    intended_share : float
        The share of traffic the design meant to give this arm (only ratios matter).
    """

    variant: str
    n: int
    event_counts: Mapping[str, int]
    value: SampleStats
    intended_share: float

    def rate(self, metric: str) -> ProportionStats:
        """The rate of ``metric`` as :class:`ProportionStats`."""
        return ProportionStats(self.n, int(self.event_counts.get(metric, 0)))


@dataclass(frozen=True)
class Comparison:
    """A variant against control on one metric.

    ``lift`` and ``ci`` are relative (``0.05`` is +5%); ``absolute_lift`` and ``absolute_ci`` are in the
    metric's units. ``ci_method`` names how they were made: ``score`` for rates (score intervals of the
    difference and of the ratio, :func:`analysis.lift.rate_difference_score` and
    :func:`analysis.lift.rate_ratio_score`), ``fieller`` or ``delta`` for values (the absolute interval
    is then Welch's), ``undefined`` when the control's mean is 0. ``p_value_adjusted`` is corrected for
    all comparisons of the slot (variants x metrics); ``significant`` is ``p_value_adjusted < alpha``.
    ``credible_interval`` is the Bayesian interval of the relative lift. ``sequential`` holds the
    always-valid result. ``variance_reduction`` is set when the value metric was CUPED-adjusted (the
    share of the difference's variance removed).
    """

    slot: str
    variant: str
    control: str
    metric: str
    kind: MetricKind
    control_mean: float
    variant_mean: float
    absolute_lift: float
    absolute_ci: tuple[float, float]
    lift: float
    ci: tuple[float, float]
    ci_method: str
    test: str
    statistic: float
    p_value: float
    p_value_adjusted: float
    significant: bool
    prob_beat_control: float
    expected_loss: float
    credible_interval: tuple[float, float]
    absolute_credible_interval: tuple[float, float]
    sequential: SequentialResult
    notes: tuple[str, ...] = ()
    variance_reduction: float | None = None


@dataclass(frozen=True)
class ArmResult:
    """One arm on one metric, in the Bayesian model: its posterior and how it ranks.

    ``expected_loss`` is against the best arm, :math:`E[\\max_j \\theta_j - \\theta_i]` (what is given up
    by shipping this arm); ``lift_credible_interval`` is of the relative lift over control.
    """

    slot: str
    variant: str
    metric: str
    kind: MetricKind
    n: int
    mean: float
    credible_interval: tuple[float, float]
    posterior: Posterior
    prob_best: float
    expected_loss: float
    lift_credible_interval: tuple[float, float]
    absolute_lift_credible_interval: tuple[float, float]


@dataclass(frozen=True)
class SlotAnalysis:
    """Everything an analyst reads about one slot. :meth:`to_dict` gives JSON-ready output."""

    slot: str
    control: str
    primary_metric: str
    alpha: float
    correction: Correction
    comparisons: list[Comparison]
    arms: list[ArmResult]
    omnibus: dict[str, SignificanceResult]
    srm: SrmResult
    guardrails: list[NonInferiorityResult]
    decision: Decision
    stopping_rule: str
    seed: int
    warnings: list[str] = field(default_factory=list)
    cuped_theta: float | None = None

    def comparison(self, variant: str, metric: str) -> Comparison:
        """The comparison of ``variant`` against control on ``metric``."""
        for c in self.comparisons:
            if c.variant == variant and c.metric == metric:
                return c
        raise KeyError(f"no comparison for variant {variant!r} on metric {metric!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: snake_case keys, floats (NaN and infinities as None), lists."""
        return to_jsonable(self)


def analyze_slot(
    slot: str,
    arms: Sequence[ArmData],
    control: str,
    *,
    metrics: Sequence[str],
    value_metric: str | None = "reward",
    guardrails: Sequence[str] = (),
    alpha: float = 0.05,
    correction: Correction = "holm",
    guardrail_margin: float = 0.1,
    min_lift: float = 0.02,
    tuning_n: float = DEFAULT_TUNING_N,
    srm_threshold: float = SRM_THRESHOLD,
    seed: int = 0,
    draws: int = 20_000,
    covariates: Mapping[str, RegressionStats] | None = None,
    adaptive: bool = False,
) -> SlotAnalysis:
    """Analyse one slot: each variant against ``control`` on each metric.

    Parameters
    ----------
    slot : str
        The slot's name (``subject``, ``cta``).
    arms : Sequence[ArmData]
        All arms of the slot, control included, length k >= 2.
    control : str
        The control variant's id.
    metrics : Sequence[str]
        Event types analysed as rates (``open``, ``click``, ``conversion``).
    value_metric : str or None
        Name given to ``ArmData.value`` (analysed with Welch's t-test and the normal model); None to
        skip it.
    guardrails : Sequence[str]
        Event types where higher is worse (``unsubscribe``), checked for non-inferiority within
        ``guardrail_margin`` (relative to control).
    alpha : float
        Significance level for tests, intervals (``1 - alpha``) and the sequential test.
    correction : {"holm", "bh", "none"}
        Multiplicity correction across all comparisons (variants x metrics) of the slot.
    min_lift : float
        Smallest relative lift worth detecting on the primary metric: when every variant's confidence
        sequence lies within ``+-min_lift`` the decision is ``no detectable difference``.
    tuning_n : float
        Units (two arms together) at which the sequential confidence sequence is tightest.
    srm_threshold : float
        p-value below which the sample ratio is flagged.
    seed : int
        Returned in the result. Kept for callers that pass it: the Bayesian intervals and expected losses
        are computed by numerical integration (:func:`analysis.bayesian.summarise_posteriors`), so no
        result depends on it.
    draws : int
        Ignored, for the same reason (it was the number of Monte Carlo draws per arm).
    covariates : Mapping[str, RegressionStats] or None
        Per variant, the value metric (``y``) jointly with a pre-period covariate (``x``, for example
        the recipient's revenue or clicks in the previous 30 days). When given, the value metric is
        CUPED-adjusted (:mod:`analysis.cuped`, one ``theta`` pooled over all arms) and each value
        comparison reports its ``variance_reduction``.
    adaptive : bool
        The allocation moves with the data (a bandit): there is no intended split, so the sample ratio
        check is reported as not applicable instead of tested (``intended_share`` is then unused).

    Returns
    -------
    SlotAnalysis
        The primary metric is ``value_metric`` when given, otherwise ``metrics[0]``.
    """
    check_alpha(alpha)
    _validate(slot, arms, control, metrics, value_metric, guardrails, min_lift)
    ordered = sorted(arms, key=lambda a: a.variant != control)  # control first, others in input order
    ctrl = ordered[0]
    value_stats = {a.variant: a.value for a in ordered}
    theta = None
    if covariates is not None and value_metric is not None:
        _validate_covariates(ordered, covariates)
        joint = [covariates[a.variant] for a in ordered]
        theta = cuped_theta(joint)
        adjusted = adjust_arms(joint, theta)
        value_stats = {a.variant: s for a, s in zip(ordered, adjusted, strict=True)}
    metric_kinds: list[tuple[str, MetricKind]] = [(m, "rate") for m in metrics]
    if value_metric is not None:
        metric_kinds.append((value_metric, "value"))
    primary = value_metric if value_metric is not None else metrics[0]

    ends = np.array([alpha / 2, 1 - alpha / 2])
    pending: list[dict[str, Any]] = []
    arm_results: list[ArmResult] = []
    omnibus: dict[str, SignificanceResult] = {}
    warnings: list[str] = []
    for metric, kind in metric_kinds:
        estimates = [a.rate(metric) if kind == "rate" else value_stats[a.variant] for a in ordered]
        posteriors = [_posterior(e, kind) for e in estimates]
        exact = summarise_posteriors(posteriors, level=1 - alpha)
        best = exact.prob_best
        for i, arm in enumerate(ordered):
            post = posteriors[i]
            arm_results.append(ArmResult(
                slot=slot, variant=arm.variant, metric=metric, kind=kind, n=arm.n, mean=estimates[i].mean,
                credible_interval=_pair(post.ppf(ends)),
                posterior=post, prob_best=float(best[i]), expected_loss=float(exact.expected_loss_vs_best[i]),
                lift_credible_interval=_pair(exact.relative_lift_ci[i]),
                absolute_lift_credible_interval=_pair(exact.absolute_lift_ci[i]),
            ))
        if kind == "rate":
            omnibus[metric] = chi_square_test([e for e in estimates])
        for i, arm in enumerate(ordered[1:], start=1):
            pending.append(_compare(
                slot, ctrl, arm, metric, kind, estimates[0], estimates[i], exact.relative_lift_ci[i],
                exact.absolute_lift_ci[i], alpha, tuning_n, float(exact.prob_beat_control[i]),
                float(exact.expected_loss_vs_control[i]),
            ))

    adjusted_p = adjust_p_values([p["p_value"] for p in pending], correction)
    comparisons = [
        Comparison(**p, p_value_adjusted=float(q), significant=bool(q < alpha))
        for p, q in zip(pending, adjusted_p, strict=True)
    ]
    for c in comparisons:
        warnings.extend(f"{c.variant} / {c.metric}: {note}" for note in c.notes)

    guardrail_results = [
        check_noninferiority(ctrl.rate(g), arm.rate(g), metric=g, variant_name=arm.variant,
                             control_name=control, margin=guardrail_margin, alpha=alpha)
        for g in guardrails for arm in ordered[1:]
    ]
    if adaptive:
        srm = sample_ratio_not_applicable([a.n for a in ordered], srm_threshold)
    else:
        srm = check_sample_ratio([a.n for a in ordered], [a.intended_share for a in ordered], srm_threshold)
    if srm.flagged:
        warnings.insert(0, srm.message)
    decision = decide(
        [c for c in comparisons if c.metric == primary], guardrail_results, srm, control=control,
        alpha=alpha, correction=correction, min_lift=min_lift,
    )
    return SlotAnalysis(
        slot=slot, control=control, primary_metric=primary, alpha=alpha, correction=correction,
        comparisons=comparisons, arms=arm_results, omnibus=omnibus, srm=srm, guardrails=guardrail_results,
        decision=decision, stopping_rule=stopping_rule(alpha), seed=seed, warnings=warnings,
        cuped_theta=theta,
    )


def _compare(
    slot: str, ctrl: ArmData, arm: ArmData, metric: str, kind: MetricKind,
    a: MeanEstimate, b: MeanEstimate, rel_cred: np.ndarray, abs_cred: np.ndarray, alpha: float,
    tuning_n: float, prob_beat_control: float, expected_loss: float,
) -> dict[str, Any]:
    notes: list[str] = []
    reduction: float | None = None
    if kind == "rate":
        assert isinstance(a, ProportionStats) and isinstance(b, ProportionStats)
        test = compare_rates(a, b)
        absolute, relative = rate_difference_score(a, b, alpha), rate_ratio_score(a, b, alpha)
        if test.method.startswith("Fisher"):
            notes.append("small counts: Fisher's exact test instead of the z-test")
    else:
        assert isinstance(a, SampleStats) and isinstance(b, SampleStats)
        test = welch_test(a, b)
        absolute = absolute_lift(a, b, alpha, df=welch_df(a, b))
        notes += [n for n in (skewness_note(ctrl.value, ctrl.variant), skewness_note(arm.value, arm.variant))
                  if n]
        if a is not ctrl.value:  # CUPED-adjusted
            raw = ctrl.value.variance_of_mean + arm.value.variance_of_mean
            reduction = 1 - (a.variance_of_mean + b.variance_of_mean) / raw if raw > 0 else 0.0
        relative = relative_lift(a, b, alpha)
    return dict(
        slot=slot, variant=arm.variant, control=ctrl.variant, metric=metric, kind=kind,
        control_mean=a.mean, variant_mean=b.mean, absolute_lift=absolute.estimate,
        absolute_ci=absolute.ci, lift=relative.estimate, ci=relative.ci, ci_method=relative.method,
        test=test.method, statistic=test.statistic, p_value=test.p_value,
        prob_beat_control=prob_beat_control, expected_loss=expected_loss,
        credible_interval=_pair(rel_cred), absolute_credible_interval=_pair(abs_cred),
        sequential=msprt(a, b, alpha=alpha, tuning_n=tuning_n, n_total=ctrl.n + arm.n),
        notes=tuple(notes), variance_reduction=reduction,
    )


def _posterior(estimate: ProportionStats | SampleStats, kind: MetricKind) -> Posterior:
    if kind == "rate":
        assert isinstance(estimate, ProportionStats)
        return rate_posterior(estimate)
    assert isinstance(estimate, SampleStats)
    return mean_posterior(estimate)


def _pair(values: np.ndarray) -> tuple[float, float]:
    return (float(values[0]), float(values[1]))


def _validate_covariates(arms: Sequence[ArmData], covariates: Mapping[str, RegressionStats]) -> None:
    for a in arms:
        cov = covariates.get(a.variant)
        if cov is None:
            raise AnalysisInputError(f"covariates: no entry for variant {a.variant!r}")
        if cov.n != a.n:
            raise AnalysisInputError(f"covariates[{a.variant!r}].n: {cov.n} differs from the arm's n = {a.n}")
        if not math.isclose(cov.sum_y, a.value.sum, rel_tol=1e-9, abs_tol=1e-9):
            raise AnalysisInputError(
                f"covariates[{a.variant!r}].sum_y: {cov.sum_y} is not the arm's value sum {a.value.sum}"
            )
    extra = set(covariates) - {a.variant for a in arms}
    if extra:
        raise AnalysisInputError(f"covariates: unknown variants {sorted(extra)}")


def _validate(
    slot: str, arms: Sequence[ArmData], control: str, metrics: Sequence[str], value_metric: str | None,
    guardrails: Sequence[str], min_lift: float,
) -> None:
    if isinstance(metrics, str) or isinstance(guardrails, str):
        raise AnalysisInputError("metrics / guardrails: pass a sequence of names, not one string")
    if len(arms) < 2:
        raise AnalysisInputError(f"arms: slot {slot!r} needs at least 2 arms, got {len(arms)}")
    names = [a.variant for a in arms]
    if len(set(names)) != len(names):
        raise AnalysisInputError(f"arms: slot {slot!r} has duplicate variants {sorted(names)}")
    if control not in names:
        raise AnalysisInputError(f"control: {control!r} is not an arm of slot {slot!r} (arms: {names})")
    if not metrics and value_metric is None:
        raise AnalysisInputError("metrics: give at least one metric or a value_metric")
    if not min_lift > 0:
        raise AnalysisInputError(f"min_lift: must be > 0, got {min_lift!r}")
    seen = {event for a in arms for event in a.event_counts}
    for m in [*metrics, *guardrails]:
        if m not in seen:
            raise AnalysisInputError(f"metrics: no arm of slot {slot!r} has event counts for {m!r}")
    for i, a in enumerate(arms):
        if a.n < 2:
            raise AnalysisInputError(f"arms[{i}].n: variant {a.variant!r} needs at least 2 units, got {a.n}")
        for event, count in a.event_counts.items():
            if not 0 <= count <= a.n:
                raise AnalysisInputError(
                    f"arms[{i}].event_counts[{event!r}]: {count} is outside 0..n = {a.n}"
                )
        if value_metric is not None and a.value.n != a.n:
            raise AnalysisInputError(
                f"arms[{i}].value.n: {a.value.n} differs from n = {a.n} (include zero values)"
            )
        if not (a.intended_share > 0 and math.isfinite(a.intended_share)):
            raise AnalysisInputError(f"arms[{i}].intended_share: must be > 0, got {a.intended_share!r}")
