"""CUPED: variance reduction with a pre-period covariate, from summary statistics alone.

With :math:`\\theta = \\mathrm{cov}(x, y) / \\mathrm{var}(x)` estimated on all arms pooled, each unit's
metric is replaced by :math:`y' = y - \\theta (x - \\bar x)` (:math:`\\bar x` the pooled pre-period
mean), which leaves every arm's expected mean unchanged (randomisation makes :math:`x` balanced) and
shrinks its variance by about :math:`\\rho^2`. The sums of :math:`y'` and :math:`y'^2` follow exactly
from ``n``, the sums, the sums of squares and the cross-product sum, so the adjusted arms are ordinary
:class:`~analysis.stats.SampleStats` (Deng, Xu, Kohavi and Walker, WSDM 2013).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from analysis.errors import AnalysisInputError
from analysis.lift import LiftInterval, absolute_lift
from analysis.significance import SignificanceResult, welch_df, welch_test
from analysis.stats import RegressionStats, SampleStats, merged


@dataclass(frozen=True)
class CupedResult:
    """Variant against control on the CUPED-adjusted metric.

    ``variance_reduction`` is :math:`1 - V_{adj} / V_{raw}` for the variance of the difference in
    means (0.3 means the adjusted comparison is as precise as the raw one with 1/0.7 the units).
    """

    theta: float
    control: SampleStats
    variant: SampleStats
    difference: LiftInterval
    test: SignificanceResult
    raw_difference: LiftInterval
    variance_reduction: float


def cuped_theta(arms: Sequence[RegressionStats]) -> float:
    """:math:`\\theta` from all arms pooled; 0 when the covariate does not vary."""
    pooled = _pool(arms)
    var_x = pooled.x.variance
    return pooled.covariance / var_x if var_x > 0 else 0.0


def adjust_arms(arms: Sequence[RegressionStats], theta: float | None = None) -> list[SampleStats]:
    """Each arm's summary of :math:`y' = y - \\theta (x - \\bar x_{pooled})`, in order.

    .. math:: \\sum y' = \\sum y - \\theta (\\sum x - n c), \\quad
              \\sum y'^2 = \\sum y^2 - 2\\theta(\\sum xy - c\\sum y) + \\theta^2(\\sum x^2 - 2c\\sum x + nc^2)
    """
    pooled = _pool(arms)
    t = cuped_theta(arms) if theta is None else theta
    c = pooled.sum_x / pooled.n if pooled.n else 0.0
    out = []
    for arm in arms:
        centred_x = arm.sum_x - arm.n * c
        sum_adj = arm.sum_y - t * centred_x
        cross = arm.sum_xy - c * arm.sum_y
        xx = arm.sum_x_squares - 2 * c * arm.sum_x + arm.n * c * c
        squares = max(arm.sum_y_squares - 2 * t * cross + t * t * xx, 0.0)
        out.append(SampleStats(arm.n, sum_adj, squares))
    return out


def cuped_compare(control: RegressionStats, variant: RegressionStats, alpha: float = 0.05,
                  theta: float | None = None) -> CupedResult:
    """Welch comparison of the adjusted metric, with the variance reduction achieved.

    ``theta`` defaults to the pooled estimate of these two arms; pass :func:`cuped_theta` of all arms of
    a slot to share one across several comparisons.
    """
    for name, arm in (("control", control), ("variant", variant)):
        if arm.n < 2:
            raise AnalysisInputError(f"{name}: CUPED needs n >= 2 per arm, got n = {arm.n}")
    t = cuped_theta([control, variant]) if theta is None else theta
    adj_control, adj_variant = adjust_arms([control, variant], t)
    test = welch_test(adj_control, adj_variant)
    diff = absolute_lift(adj_control, adj_variant, alpha, df=welch_df(adj_control, adj_variant))
    raw_c, raw_v = control.y, variant.y
    raw = absolute_lift(raw_c, raw_v, alpha, df=welch_df(raw_c, raw_v))
    v_raw = raw_c.variance_of_mean + raw_v.variance_of_mean
    v_adj = adj_control.variance_of_mean + adj_variant.variance_of_mean
    reduction = 1 - v_adj / v_raw if v_raw > 0 else 0.0
    return CupedResult(t, adj_control, adj_variant, diff, test, raw, reduction)


def fill_missing_covariate(
    observed: Sequence[RegressionStats], totals: Sequence[SampleStats]
) -> list[RegressionStats]:
    """Each arm's CUPED statistics over all its units, those without the covariate given the pooled mean.

    ``observed[i]`` summarises the units of arm ``i`` whose covariate is known (``x`` and ``y``);
    ``totals[i]`` the metric ``y`` over all the arm's units. A unit without the covariate gets
    :math:`x = \\bar x_{obs}`, the mean over every arm's observed units, so its centred covariate is 0
    and :func:`adjust_arms` leaves its ``y`` as it is; :math:`\\theta` equals that of the observed
    units alone. With ``m`` missing units of metric sums :math:`S_y^{miss}`:

    .. math:: \\sum x = \\sum_{obs} x + m\\bar x_{obs}, \\quad
              \\sum x^2 = \\sum_{obs} x^2 + m\\bar x_{obs}^2, \\quad
              \\sum xy = \\sum_{obs} xy + \\bar x_{obs} S_y^{miss}

    Missingness decided before the send (the attribute was not known) is independent of the arm, so
    every arm's adjusted mean stays unbiased.
    """
    if len(observed) != len(totals):
        raise AnalysisInputError(f"totals: {len(totals)} arms, observed has {len(observed)}")
    for i, (obs, tot) in enumerate(zip(observed, totals, strict=True)):
        if obs.n > tot.n:
            raise AnalysisInputError(f"observed[{i}].n: {obs.n} is more than the arm's n = {tot.n}")
    pooled = _pool(observed)
    fill = pooled.sum_x / pooled.n if pooled.n else 0.0
    out = []
    for obs, tot in zip(observed, totals, strict=True):
        m = tot.n - obs.n
        out.append(RegressionStats(
            tot.n,
            obs.sum_x + m * fill,
            tot.sum,
            obs.sum_x_squares + m * fill * fill,
            tot.sum_squares,
            obs.sum_xy + fill * (tot.sum - obs.sum_y),
        ))
    return out


def _pool(arms: Sequence[RegressionStats]) -> RegressionStats:
    if not arms:
        raise AnalysisInputError("arms: need at least one arm")
    return merged(arms)
