"""HTML reports: self-contained pages whose figures carry the result's own numbers."""

from __future__ import annotations

import numpy as np

from simulations.candidates import CandidateSpec
from simulations.replay import replay_report
from simulations.report import replay_figure, replay_html, simulation_figure, simulation_html
from simulations.scenario import scenario_from_mapping
from simulations.synthetic import run_simulation
from tests.simulations.synthetic_logs import make_log


def test_simulation_page_is_offline_and_plots_the_mean_curves():
    scenario = scenario_from_mapping({
        "variants": ["a", "b"],
        "segments": [{"name": "all", "share": 1, "rates": {"a": 0.1, "b": 0.2}}],
        "waves": {"count": 3, "recipients": 200},
    })
    result = run_simulation(scenario, ("ab", "thompson"), seeds=2)
    figure = simulation_figure(result)
    lines = [t for t in figure.data if t.mode == "lines"]
    assert [t.name for t in lines] == ["ab", "ab", "thompson", "thompson"]
    np.testing.assert_allclose(lines[0].y, result.run("ab").cumulative_regret.mean(axis=0))
    np.testing.assert_array_equal(lines[0].x, [200, 400, 600])
    page = simulation_html(result)
    assert page.startswith("<!DOCTYPE html>") and "plotly.js" in page.lower()
    assert "https://cdn" not in page.split("<body>")[1][:2000]  # the library is embedded, not fetched
    assert "What a fixed A/B test would have concluded" in page


def test_replay_page_shows_every_estimate_and_its_interval():
    data = make_log(2000, np.random.default_rng(0), as_mappings=True).data
    report = replay_report(data, {"emoji": CandidateSpec(variant="emoji")})
    figure = replay_figure(report)
    dr = next(t for t in figure.data if t.name == "dr")
    estimate = next(e for e in report.candidates[0].estimates if e.estimator == "dr")
    assert list(dr.y) == [estimate.value]
    assert list(dr.error_y.array) == [estimate.ci[1] - estimate.value]
    page = replay_html(report)
    assert "logging policy" in page and "uniform logging, prefer snips" in page
    assert "Lift over the logging policy" in page and "<td>dr lift</td>" in page


def test_replay_page_lists_the_rows_set_aside(tmp_path):
    import pandas as pd

    from simulations.logs import load_logs

    path = tmp_path / "log.csv"
    frame = pd.DataFrame({"v": ["a", "b", "a", "c", "b"], "p": [0.5, 0.5, 0, 0.5, 0.5], "r": [1, 0, 1, 0, 1]})
    frame.to_csv(path, index=False)
    load = load_logs(path, action_col="v", reward_col="r", propensity_col="p", actions=["a", "b"])
    report = replay_report(load.data, {"a": CandidateSpec(variant="a")}, train_fraction=0.0)
    page = replay_html(report, load)
    assert "5 rows read, 3 used, 2 set aside." in page
    assert "<td>zero_propensity</td><td>1</td><td>row 2: 0.0</td>" in page
    assert "<td>unknown_action</td><td>1</td><td>row 3: c</td>" in page


def test_replay_page_shows_no_interval_for_the_direct_method_and_says_why():
    data = make_log(2000, np.random.default_rng(0), as_mappings=True).data
    report = replay_report(data, {"emoji": CandidateSpec(variant="emoji")})
    page = replay_html(report)
    assert ("<td>emoji</td><td>dm</td>" in page and "<td>n/a</td>" in page
            and "no interval: one from these rows alone would leave out the reward model" in page)
    assert "[n/a, n/a]" not in page and "[nan, nan]" not in page
    dm = next(t for t in replay_figure(report).data if t.name == "dm")
    assert list(dm.error_y.array) == [None]  # no error bar, not a zero-width one
