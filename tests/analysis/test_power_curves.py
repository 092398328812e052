"""Power curves: their points agree with the solvers, and the chart draws them offline."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import proportion_effectsize

from analysis.power import PowerInputError, plan_bandit, plan_test_then_send, power_curve, solve_rate
from analysis.power.plots import (
    figure_html,
    plot_bandit_plan,
    plot_power_curve,
    plot_test_then_send,
    power_curve_html,
)


def test_rate_curve_over_n_matches_statsmodels_pointwise():
    curve = power_curve("rate", baseline=0.1, mde=0.02, values=[500, 1000, 4000, 9000])
    h = proportion_effectsize(0.12, 0.1)
    # statsmodels' NormalIndPower().power(h, nobs1=n, alpha=0.05) at each n, computed independently here
    expected = [NormalIndPower().power(h, nobs1=n, alpha=0.05) for n in (500, 1000, 4000, 9000)]
    np.testing.assert_allclose(curve.power, expected, rtol=1e-12)
    assert curve.x_at_target == pytest.approx(solve_rate(0.1, mde=0.02).sizes.n_exact)
    assert curve.fixed_effect == pytest.approx(0.02)


def test_default_grid_brackets_the_target_and_is_monotone():
    curve = power_curve("rate", baseline=0.03, mde=0.1, relative=True, points=30)
    assert len(curve.x) == len(curve.power) == 30
    assert np.all(np.diff(curve.power) > 0)
    assert curve.power[0] < 0.8 < curve.power[-1]
    assert curve.x[0] < curve.x_at_target < curve.x[-1]


def test_mean_curve_over_effect_matches_the_t_test():
    curve = power_curve("mean", over="effect", sd=2.0, n_per_arm=64, values=[0.2, 0.6, 1.0, 1.4])
    # TTestIndPower().power(d, nobs1=64, alpha=0.05) with d = effect / sd
    expected = [TTestIndPower().power(e / 2.0, nobs1=64, alpha=0.05) for e in (0.2, 0.6, 1.0, 1.4)]
    np.testing.assert_allclose(curve.power, expected, rtol=1e-12)
    # d = 0.499 reaches 80 % at 64 per group (Cohen's table: d = 0.5 needs 64)
    assert curve.x_at_target / 2.0 == pytest.approx(0.499, abs=1e-3)
    assert curve.fixed_n_per_arm == 64


def test_table_and_dict():
    curve = power_curve("rate", over="effect", baseline=0.05, n_per_arm=5000, points=4)
    table = curve.to_markdown().splitlines()
    assert table[0] == "| effect | power |" and len(table) == 2 + 4
    assert len(curve.rows()) == 4 and set(curve.rows()[0]) == {"effect", "power"}
    assert json.loads(json.dumps(curve.to_dict()))["power"] == list(curve.power)


def test_plot_draws_the_points_and_writes_offline_html():
    curve = power_curve("rate", baseline=0.1, mde=0.02, points=6)
    figure = plot_power_curve(curve)
    assert list(figure.data[0].x) == list(curve.x) and list(figure.data[0].y) == list(curve.power)
    assert figure.data[1].x[0] == curve.x_at_target
    assert figure.layout.xaxis.type == "log"
    html = power_curve_html(curve)
    # plotly.js inlined (several megabytes), no script loaded from a CDN
    assert "<html>" in html and len(html) > 1_000_000 and "<script src=" not in html


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"metric": "rate", "mde": 0.01}, "baseline is missing; a rate curve needs the control rate."),
     ({"metric": "mean", "mde": 0.01}, "sd is missing; a mean curve needs the standard deviation."),
     ({"metric": "rate", "baseline": 0.1}, "mde is missing; a curve over n holds the effect fixed."),
     ({"metric": "rate", "baseline": 0.1, "over": "effect"},
      "n_per_arm is missing; a curve over the effect holds the size fixed."),
     ({"metric": "rate", "baseline": 0.1, "mde": 0.01, "values": [10, 5]},
      "values must be strictly increasing."),
     ({"metric": "rate", "baseline": 0.1, "mde": 0.01, "values": [1, 5]},
      "values must all be at least 2; got 1."),
     ({"metric": "count", "baseline": 0.1, "mde": 0.01},
      "metric must be one of 'rate', 'mean'; got 'count'."),
     ({"metric": "rate", "baseline": 0.1, "mde": 0.01, "points": 1}, "points must be at least 2; got 1.")],
)
def test_bad_curve_input(kwargs, message):
    with pytest.raises(PowerInputError) as caught:
        power_curve(**kwargs)
    assert str(caught.value) == message


def test_test_then_send_chart_marks_the_optimum():
    plan = plan_test_then_send(50_000, rates=[0.04, 0.05])
    figure = plot_test_then_send(plan)
    assert list(figure.data[0].x) == list(plan.shares)
    assert list(figure.data[0].y) == list(plan.expected_by_share)
    assert figure.data[1].x[0] == plan.test_share and figure.data[1].y[0] == plan.expected_conversions
    assert "<script src=" not in figure_html(figure)


def test_bandit_chart_draws_the_learning_curve():
    plan = plan_bandit([0.04, 0.05], 4000, batches=4, replications=5, rng=np.random.default_rng(0))
    figure = plot_bandit_plan(plan)
    assert list(figure.data[0].y) == list(plan.losing_share_by_batch)
    assert list(figure.data[1].y) == [0.5] * 4


def test_plot_labels_the_size_reached_as_people_write_it():
    # 3% baseline, +10% relative, alpha 0.05, power 0.8: 53,182 per arm (the README's plan)
    curve = power_curve("rate", baseline=0.03, mde=0.1, relative=True)
    plan = solve_rate(0.03, mde=0.1, relative=True)
    label = plot_power_curve(curve).data[1].text[1]
    assert label == f"{plan.n_per_arm:,}" and "e+" not in label
    effect = plot_power_curve(power_curve("rate", over="effect", baseline=0.03, n_per_arm=50_000))
    label = effect.data[1].text[1]
    assert re.fullmatch(r"0\.00\d{4}", label)  # four significant digits, no exponent
    assert float(label) == pytest.approx(effect.data[1].x[0], rel=1e-3)
