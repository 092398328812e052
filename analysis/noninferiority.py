"""Guardrail metrics as non-inferiority checks: is the variant no worse than control by a margin?"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import special

from analysis.errors import AnalysisInputError
from analysis.lift import MeanEstimate, check_alpha


@dataclass(frozen=True)
class NonInferiorityResult:
    """One-sided non-inferiority test of a guardrail metric.

    ``margin`` is relative to the control mean; ``margin_absolute`` is ``margin * |control_mean|``.
    ``bound`` is the one-sided ``1 - alpha`` confidence bound of ``variant_mean - control_mean`` on the
    harmful side (an upper bound when higher is worse). ``non_inferior`` is True when that bound stays
    inside the margin, which is the same as ``p_value < alpha``.
    """

    metric: str
    variant: str
    control: str
    control_mean: float
    variant_mean: float
    difference: float
    margin: float
    margin_absolute: float
    bound: float
    p_value: float
    non_inferior: bool
    higher_is_worse: bool


def check_noninferiority(
    control: MeanEstimate,
    variant: MeanEstimate,
    *,
    metric: str,
    variant_name: str,
    control_name: str,
    margin: float = 0.1,
    alpha: float = 0.05,
    higher_is_worse: bool = True,
) -> NonInferiorityResult:
    """Test :math:`H_0: d \\ge \\delta` (harm of at least the margin) against :math:`H_1: d < \\delta`.

    With :math:`d = m_B - m_A` signed so that positive is harmful, :math:`\\delta = \\text{margin}
    \\cdot |m_A|` and the unpooled standard error :math:`s = \\sqrt{v_A + v_B}`:

    .. math:: z = (d - \\delta) / s, \\quad p = \\Phi(z), \\quad \\text{bound} = d + z_{1-\\alpha} s

    For rates this is the Wald non-inferiority test of two independent proportions.
    """
    check_alpha(alpha)
    if not (margin >= 0 and math.isfinite(margin)):
        raise AnalysisInputError(f"margin: must be a finite number >= 0, got {margin!r}")
    sign = 1.0 if higher_is_worse else -1.0
    harm = sign * (variant.mean - control.mean)
    delta = margin * abs(control.mean)
    se = math.sqrt(control.variance_of_mean + variant.variance_of_mean)
    if se == 0:
        p_value = 0.0 if harm < delta else 1.0
    else:
        p_value = float(special.ndtr((harm - delta) / se))
    bound = harm + float(-special.ndtri(alpha)) * se
    return NonInferiorityResult(
        metric=metric, variant=variant_name, control=control_name,
        control_mean=control.mean, variant_mean=variant.mean, difference=variant.mean - control.mean,
        margin=margin, margin_absolute=delta, bound=sign * bound, p_value=p_value,
        non_inferior=bool(p_value < alpha), higher_is_worse=higher_is_worse,
    )
