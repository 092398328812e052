"""Planning before a test: power, sample size, minimum detectable effect, duration.

This module gathers the public planning API; the work is done in the ``analysis.power_*`` modules:

- :mod:`analysis.power_rates`: conversion rates (statsmodels' Cohen's h, or the unpooled formula);
  sample size, minimum detectable effect, and power (``evaluate_rate_power`` with its settings);
- :mod:`analysis.power_means`: values per recipient (t-test), sd given or from a sample (values or
  their summary statistics);
- :mod:`analysis.power_duration`: days from the daily volume and the traffic share;
- :mod:`analysis.power_curves`: power against n or against the effect (charts in
  :mod:`analysis.power_plots`);
- :mod:`analysis.power_test_then_send`: the test share of a known list that maximises conversions;
- :mod:`analysis.power_sequential`: the sample inflation of sequential analyses (mSPRT, Pocock, OBF);
- :mod:`analysis.power_bandit`: traffic to losing variants, Thompson bandit against a fixed test;
- :mod:`analysis.power_inputs`: :class:`PowerInputError` and the shared checks.
"""

from __future__ import annotations

from analysis.power_bandit import BanditPlan, plan_bandit
from analysis.power_curves import PowerCurve, power_curve
from analysis.power_duration import solve_duration
from analysis.power_inputs import PowerInputError
from analysis.power_means import (
    MeanMde,
    MeanPlan,
    MeanPower,
    evaluate_mean_power,
    solve_mean_mde,
    solve_mean_power,
    solve_mean_sample_size,
)
from analysis.power_rates import (
    RateMde,
    RatePlan,
    RatePower,
    evaluate_rate_power,
    solve_rate_mde,
    solve_rate_power,
    solve_rate_sample_size,
)
from analysis.power_sequential import SequentialInflation, sequential_inflation
from analysis.power_test_then_send import TestThenSendPlan, plan_test_then_send

__all__ = [
    "BanditPlan",
    "MeanMde",
    "MeanPlan",
    "MeanPower",
    "PowerCurve",
    "PowerInputError",
    "RateMde",
    "RatePlan",
    "RatePower",
    "evaluate_mean_power",
    "evaluate_rate_power",
    "plan_bandit",
    "power_curve",
    "sequential_inflation",
    "SequentialInflation",
    "TestThenSendPlan",
    "plan_test_then_send",
    "solve_duration",
    "solve_mean_mde",
    "solve_mean_power",
    "solve_mean_sample_size",
    "solve_rate_mde",
    "solve_rate_power",
    "solve_rate_sample_size",
]
