"""Planning before a test: power, sample size, minimum detectable effect, duration.

The public planning API. One solver per metric, statsmodels-style: leave one of ``mde``, ``n_per_arm``
and ``power`` as None and it is solved for, in one answer type per metric:

- :mod:`analysis.power.rates`: conversion rates (statsmodels' Cohen's h, or the unpooled formula),
  :func:`solve_rate` answering a :class:`RateAnswer`;
- :mod:`analysis.power.means`: values per recipient (t-test), sd given or from a sample (values or
  their summary statistics), :func:`solve_mean` answering a :class:`MeanAnswer`;
- :mod:`analysis.power.solver`: what the two share (the question, the settings, :class:`ArmSizes`);
- :mod:`analysis.power.duration`: days from the daily volume and the traffic share;

and the other questions, each with its own answer type:

- :mod:`analysis.power.curves`: power against n or against the effect (charts in
  :mod:`analysis.power.plots`);
- :mod:`analysis.power.test_then_send`: the test share of a known list that maximises conversions;
- :mod:`analysis.power.sequential`: the sample inflation of sequential analyses (mSPRT, Pocock, OBF);
- :mod:`analysis.power.bandit`: traffic to losing variants, Thompson bandit against a fixed test;
- :mod:`analysis.power.inputs`: the shared checks; :mod:`analysis.power.answer`: ``to_dict`` of every
  answer; :mod:`analysis.power.normal`: the normal
  distribution and the root finder of the rate questions, in the standard library.

The names below are loaded from their module on first use, so that importing one question (a rate
plan on the command line) does not import the libraries the others need (scipy, statsmodels).
"""

from __future__ import annotations

import importlib
from typing import Any

from analysis.errors import PowerInputError

_NAME_TO_MODULE = {
    "BanditPlan": "bandit", "plan_bandit": "bandit",
    "PowerCurve": "curves", "power_curve": "curves",
    "solve_duration": "duration",
    "MeanAnswer": "means", "solve_mean": "means",
    "RateAnswer": "rates", "solve_rate": "rates",
    "ArmSizes": "solver", "TestAnswer": "solver",
    "SequentialInflation": "sequential", "sequential_inflation": "sequential",
    "TestThenSendPlan": "test_then_send", "plan_test_then_send": "test_then_send",
}

__all__ = ["PowerInputError", *_NAME_TO_MODULE]


def __getattr__(name: str) -> Any:
    module = _NAME_TO_MODULE.get(name)
    if module is None:
        raise AttributeError(f"module 'analysis.power' has no attribute {name!r}")
    return getattr(importlib.import_module(f"analysis.power.{module}"), name)


def __dir__() -> list[str]:
    return sorted(__all__)
