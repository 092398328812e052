"""``sendlab replay``: the README's exact commands, the set-aside report, progress, and the database."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from api.cli import app
from experiments.models import OutcomeEvent
from experiments.service import ExperimentService
from experiments.spec import parse_spec
from experiments.store import create_tables, make_engine
from simulations.candidates import load_candidate
from simulations.column_maps import default_column_map
from simulations.estimates import PolicyEstimate
from simulations.log_files import log_columns
from simulations.logs import read_logs
from simulations.replay import replay_report
from tests.api.conftest import make_spec
from tests.simulations.close_estimates import assert_same_estimates

EXAMPLES = Path(__file__).resolve().parents[2] / "simulations" / "examples"
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_the_readme_command_runs_on_the_example_parquet_without_a_map(monkeypatch):
    monkeypatch.chdir(EXAMPLES)
    result = invoke("replay", "--logs", "sends.parquet", "--policy", "candidate.yaml")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "rows: 4000 read, 4000 used, 0 set aside; 2000 to train, 2000 evaluated"
    assert [line.split()[:2] for line in lines[3:]] == [["logging", "policy"]] + [
        ["thompson", name] for name in ("ips", "snips", "dm", "dr")
    ]
    # the same numbers as the in-memory replay of the same file (read whole, SendLab's column names)
    as_json = json.loads(invoke("replay", "--logs", "sends.parquet", "--policy", "candidate.yaml",
                                "--json").stdout)
    logs = read_logs("sends.parquet", default_column_map(log_columns("sends.parquet")))
    report = replay_report(logs.data, {"thompson": load_candidate("candidate.yaml")}, train_fraction=0.5)
    assert as_json["logged"]["value"] == report.logged.value
    # to the last bits but for DM and DR: the replay predicts from feature columns, which adds the same
    # terms as the in-memory replay's design-matrix product in another order (ContextEncoder.scores)
    got = [PolicyEstimate(**{**e, "ci": tuple(math.nan if x is None else x for x in e["ci"]),  # None: dm's
                             "std_error": math.nan if e["std_error"] is None else e["std_error"],
                             "warnings": tuple(e["warnings"])})
           for e in as_json["candidates"][0]["estimates"]]
    assert_same_estimates(got, report.candidates[0].estimates)
    assert as_json["logs"] == {"rows_read": 4000, "rows_used": 4000, "rows_rejected": 0, "rejected": {}}


def test_the_readme_probability_command_on_the_foreign_log(monkeypatch):
    monkeypatch.chdir(EXAMPLES)
    result = invoke("replay", "--logs", "foreign_sends.csv", "--map", "columns.yaml",
                    "--probabilities", "probabilities.csv", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert (out["train_rows"], out["test_rows"]) == (0, 4000)
    assert out["candidates"][0]["name"] == "probabilities"


@pytest.fixture
def log_with_bad_rows(tmp_path) -> tuple[Path, Path]:
    rng = np.random.default_rng(1)
    n = 400
    frame = pd.DataFrame({
        "action": rng.choice(["plain", "urgent"], n),
        "propensity": np.full(n, 0.5),
        "reward": (rng.random(n) < 0.2).astype(float),
        "context.device": rng.choice(["ios", "web"], n),
    })
    frame.loc[3, "propensity"] = 0.0
    frame.loc[[10, 11], "propensity"] = np.nan
    frame.loc[20, "action"] = "emoji"
    frame.loc[[30, 31, 32], "reward"] = 7.0
    path = tmp_path / "sends.csv"
    frame.to_csv(path, index=False)
    columns = tmp_path / "map.yaml"
    columns.write_text(yaml.safe_dump({"action": "action", "reward": "reward", "propensity": "propensity",
                                       "actions": ["plain", "urgent"], "reward_range": [0, 1]}))
    return path, columns


def test_rows_set_aside_are_printed_by_reason_with_an_example_and_reach_the_html(tmp_path, log_with_bad_rows):
    path, columns = log_with_bad_rows
    html = tmp_path / "replay.html"
    candidate = tmp_path / "always-urgent.yaml"
    candidate.write_text("variant: urgent\n")
    result = invoke("replay", "--logs", str(path), "--map", str(columns), "--policy", str(candidate),
                    "--html", str(html))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    # the split is by usable rows: the first floor(393 / 2) train, and the counts are rows used
    assert lines[0] == "rows: 400 read, 393 used, 7 set aside; 196 to train, 197 evaluated"
    assert re.split(r"\s{2,}", lines[1]) == ["set aside", "rows", "example"]
    assert [re.split(r"\s{2,}", line) for line in lines[3:7]] == [
        ["unknown action", "1", "row 20: emoji"],
        ["missing propensity", "2", "row 10: nan"],
        ["zero propensity", "1", "row 3: 0.0"],
        ["reward out of range", "3", "row 30: 7.0"],
    ]
    page = html.read_text()
    assert "Logs / set aside" in page and "400 rows read, 393 used, 7 set aside" in page
    for cell in ("<td>zero_propensity</td><td>1</td><td>row 3: 0.0</td>",
                 "<td>reward_out_of_range</td><td>3</td><td>row 30: 7.0, row 31: 7.0, row 32: 7.0</td>"):
        assert cell in page


def test_progress_goes_to_stderr_and_json_mode_has_none(log_with_bad_rows, tmp_path):
    path, columns = log_with_bad_rows
    candidate = tmp_path / "thompson.yaml"
    candidate.write_text("policy: thompson\n")
    shown = invoke("replay", "--logs", str(path), "--map", str(columns), "--policy", str(candidate))
    assert shown.exit_code == 0, shown.output
    assert "training" in shown.stderr and "evaluating" in shown.stderr
    assert "training" not in shown.stdout
    quiet = invoke("replay", "--logs", str(path), "--map", str(columns), "--policy", str(candidate), "--json")
    assert quiet.exit_code == 0 and quiet.stderr == ""
    assert json.loads(quiet.stdout)["logs"]["rows_rejected"] == 7


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ([], "--logs / --experiment: give exactly one"),
        (["--logs", "x.csv", "--experiment", "spring"], "--logs / --experiment: give exactly one"),
        (["--experiment", "nope"], "nope"),
    ],
)
def test_replay_source_errors_are_one_line(tmp_path, args, needle):
    candidate = tmp_path / "c.yaml"
    candidate.write_text("policy: thompson\n")
    result = invoke("replay", *args, "--policy", str(candidate), "--db", f"sqlite:///{tmp_path / 'x.db'}")
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: ") and needle in line


def test_a_bandit_experiment_in_the_database_replays_its_logging_policy_at_its_observed_mean(tmp_path):
    # A real service on SQLite: a (Gaussian) Thompson sampling experiment (it never learns here, so
    # every decision was drawn from the same distribution), outcomes posted for some decisions, then the
    # CLI replays the decision log from the database. The candidate is the logging distribution
    # itself, as a fixed allocation, so IPS and SNIPS must give back the observed mean reward: the
    # export's propensities, rewards and arm labels all have to line up for that.
    db = f"sqlite:///{tmp_path / 'sendlab.db'}"
    engine = make_engine(db)
    create_tables(engine)
    service = ExperimentService(engine, seed=3)
    spec = make_spec(key="spring", design={"type": "bandit", "policy": "gaussian_thompson"},
                     holdout=0.1)
    service.create(parse_spec(spec))
    decisions = service.assign_batch("spring", [(f"r{i}", {"first_name": "A"}) for i in range(900)])
    rng = np.random.default_rng(8)
    learnable = [d for d in decisions if d.reason == "policy"]
    rate = {("plain", "shop"): 0.1, ("plain", "see"): 0.2, ("urgent", "shop"): 0.3, ("urgent", "see"): 0.15}
    clicked = [d for d in learnable
               if rng.random() < rate[(d.variants["subject"].id, d.variants["cta"].id)]]
    converted = clicked[:10]
    service.record_outcomes([OutcomeEvent(f"c{i}", d.decision_id, "click") for i, d in enumerate(clicked)]
                            + [OutcomeEvent(f"v{i}", d.decision_id, "conversion")
                               for i, d in enumerate(converted)])
    engine.dispose()
    observed = (len(clicked) + 5.0 * len(converted)) / len(learnable)  # spec: click 1, conversion 5
    arms = [("plain", "shop"), ("plain", "see"), ("urgent", "shop"), ("urgent", "see")]
    arm_to_propensity = {(d.variants["subject"].id, d.variants["cta"].id): d.propensity for d in learnable}
    # before any data the four arms are exchangeable: Thompson sampling gives each exactly 1/4
    assert set(d.propensity for d in learnable) == {0.25}
    candidate = tmp_path / "logging.yaml"
    candidate.write_text(yaml.safe_dump({"policy": "fixed", "train": False, "train_fraction": 0.0,
                                         "options": {"weights": [arm_to_propensity[a] for a in arms]}}))
    result = invoke("replay", "--db", db, "--experiment", "spring", "--policy", str(candidate),
                    "--estimators", "ips,snips,dr", "--chunk-rows", "64", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["logs"] == {"rows_read": len(learnable), "rows_used": len(learnable), "rows_rejected": 0,
                           "rejected": {}}
    assert out["action_names"] == [f"subject={s}|cta={c}" for s, c in arms]
    assert out["logged"]["value"] == pytest.approx(observed, rel=1e-12)
    estimates = {e["estimator"]: e for e in out["candidates"][0]["estimates"]}
    assert estimates["ips"]["value"] == pytest.approx(observed, rel=1e-9)
    assert estimates["snips"]["value"] == pytest.approx(observed, rel=1e-9)
    # DR adds the reward model's mean correction, zero only in expectation: its interval holds the mean
    assert estimates["dr"]["ci"][0] <= observed <= estimates["dr"]["ci"][1]
    # a skewed candidate ties the arm labels to the rewards: IPS and SNIPS computed here from the decisions
    weights = dict(zip(arms, [0.4, 0.3, 0.2, 0.1], strict=True))
    candidate.write_text(yaml.safe_dump({"policy": "fixed", "train": False, "train_fraction": 0.0,
                                         "options": {"weights": [weights[a] for a in arms]}}))
    reward = {d.decision_id: 0.0 for d in learnable}
    for d in clicked:
        reward[d.decision_id] += 1.0
    for d in converted:
        reward[d.decision_id] += 5.0
    ratio = np.array([weights[(d.variants["subject"].id, d.variants["cta"].id)] / d.propensity
                      for d in learnable])
    rewards = np.array([reward[d.decision_id] for d in learnable])
    result = invoke("replay", "--db", db, "--experiment", "spring", "--policy", str(candidate),
                    "--estimators", "ips,snips", "--chunk-rows", "64", "--json")
    assert result.exit_code == 0, result.output
    skewed = {e["estimator"]: e for e in json.loads(result.stdout)["candidates"][0]["estimates"]}
    assert skewed["ips"]["value"] == pytest.approx(np.mean(ratio * rewards), rel=1e-9)
    assert skewed["snips"]["value"] == pytest.approx(np.sum(ratio * rewards) / np.sum(ratio), rel=1e-9)


def test_a_beta_candidate_on_a_reward_beyond_one_is_an_error_line_and_the_example_gaussian_one_runs(tmp_path):
    # The README's replay of the demo's log: its reward (click 1, conversion 5) is not 0/1, so the
    # Beta-Bernoulli candidate cannot learn it (one error line, exit 1); revenue_candidate.yaml can.
    db = f"sqlite:///{tmp_path / 'sendlab.db'}"
    engine = make_engine(db)
    create_tables(engine)
    service = ExperimentService(engine, seed=3)
    spec = make_spec(key="spring", design={"type": "bandit", "policy": "gaussian_thompson"})
    service.create(parse_spec(spec))
    decisions = [d for d in service.assign_batch("spring", [(f"r{i}", {}) for i in range(200)])
                 if d.reason == "policy"]
    converted = decisions[::4]
    service.record_outcomes([OutcomeEvent(f"v{i}", d.decision_id, "conversion")
                             for i, d in enumerate(converted)])
    engine.dispose()
    beta = invoke("replay", "--db", db, "--experiment", "spring",
                  "--policy", str(EXAMPLES / "candidate.yaml"))
    assert beta.exit_code == 1
    (line,) = beta.output.strip().splitlines()
    assert line.startswith("error: candidate: the policy cannot learn from this log: rewards: "), line
    assert "needs rewards in [0, 1], got 5.0" in line
    gaussian = invoke("replay", "--db", db, "--experiment", "spring", "--policy",
                      str(EXAMPLES / "revenue_candidate.yaml"), "--json")
    assert gaussian.exit_code == 0, gaussian.output
    out = json.loads(gaussian.stdout)
    assert out["candidates"][0]["name"] == "gaussian_thompson"
    evaluated = decisions[len(decisions) // 2:]  # the log in time order, the first half trains
    hits = {d.decision_id for d in evaluated} & {d.decision_id for d in converted}
    observed = 5.0 * len(hits) / len(evaluated)
    assert out["logged"]["value"] == pytest.approx(observed, rel=1e-12)


def test_an_absurd_bootstrap_is_refused_before_any_work():
    result = invoke("replay", "--logs", str(EXAMPLES / "foreign_sends.csv"), "--action-col",
                    "subject_variant", "--reward-col", "clicked", "--propensity-col", "logged_prob",
                    "--probabilities", str(EXAMPLES / "probabilities.csv"), "--bootstrap", "100000000")
    assert result.exit_code == 2  # a usage error, as for a negative --bootstrap
    (line,) = [line for line in result.output.splitlines() if line.strip()]
    assert line.startswith("error: ") and "'--bootstrap'" in line and "10000" in line, line


def test_replay_on_a_local_dask_cluster_equals_the_streamed_replay(monkeypatch, tmp_path):
    monkeypatch.chdir(EXAMPLES)
    frame = pd.read_parquet("sends.parquet")
    for day in range(4):  # the log cut by day, as a warehouse or `sendlab export --parquet` lays it out
        folder = tmp_path / f"day=2026-03-0{day + 1}"
        folder.mkdir()
        frame.iloc[day * 1000:(day + 1) * 1000].to_parquet(folder / "part-0.parquet")
    common = ["--policy", "candidate.yaml", "--chunk-rows", "700", "--json"]
    streamed = invoke("replay", "--logs", "sends.parquet", *common)
    on_dask = invoke("replay", "--logs", str(tmp_path), "--dask", "local[2]", *common)
    globbed = invoke("replay", "--logs", str(tmp_path / "day=*" / "*.parquet"), *common)
    assert on_dask.exit_code == 0, on_dask.output
    assert json.loads(on_dask.stdout) == json.loads(streamed.stdout) == json.loads(globbed.stdout)
    assert {e["estimator"] for e in json.loads(on_dask.stdout)["candidates"][0]["estimates"]} >= {
        "ips", "snips", "dm", "dr"}


@pytest.mark.parametrize("logs", ["sends.csv", "sends.parquet"])
def test_a_replay_of_a_log_file_loads_no_database_dataframe_or_plotting_library(logs):
    code = (
        "import json, sys\nfrom api.cli import app\n"
        f"sys.argv = ['sendlab', 'replay', '--logs', {str(EXAMPLES / logs)!r}, '--policy', "
        f"{str(EXAMPLES / 'candidate.yaml')!r}, '--json']\n"
        "try:\n    app()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "heavy = ('pandas', 'scipy', 'statsmodels', 'sqlalchemy', 'sqlmodel', 'plotly', 'dask', 'rich', "
        "'vowpalwabbit')\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & set(heavy))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    *answer, loaded = out.stdout.strip().splitlines()
    assert json.loads("\n".join(answer))["logs"]["rows_read"] == 4000
    assert json.loads(loaded) == []


def test_a_target_on_a_variant_never_logged_gets_no_estimate_and_the_no_support_warning(tmp_path):
    # The log has plain and urgent only; the map lists emoji and the target sends every row emoji. IPS
    # printed 0 [0, 0], DM and DR the overall mean reward with a zero-width interval.
    rng = np.random.default_rng(3)
    n = 300
    pd.DataFrame({
        "action": rng.choice(["plain", "urgent"], n), "propensity": np.full(n, 0.5),
        "reward": (rng.random(n) < 0.1).astype(float), "context.device": rng.choice(["ios", "web"], n),
    }).to_csv(tmp_path / "sends.csv", index=False)
    (tmp_path / "map.yaml").write_text(yaml.safe_dump({
        "action": "action", "reward": "reward", "propensity": "propensity", "context": ["context.device"],
        "actions": ["plain", "urgent", "emoji"]}))
    pd.DataFrame({"plain": np.zeros(n), "urgent": np.zeros(n), "emoji": np.ones(n)}).to_csv(
        tmp_path / "emoji.csv", index=False)
    args = ("replay", "--logs", str(tmp_path / "sends.csv"), "--map", str(tmp_path / "map.yaml"),
            "--probabilities", str(tmp_path / "emoji.csv"), "--estimators", "ips,snips,dm,dr,clipped_ips")
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    estimates = json.loads(result.stdout)["candidates"][0]["estimates"]
    assert [e["estimator"] for e in estimates] == ["replay", "ips", "snips", "dm", "dr", "clipped_ips"]
    for e in estimates:
        assert (e["value"], e["ci"], e["std_error"]) == (None, [None, None], None), e
        assert e["warnings"][0] == ("no row supports the target policy: all its probability is on variants "
                                    "no row logged (emoji)")
    text = invoke(*args)
    assert text.exit_code == 0, text.output
    rows = [re.split(r"\s{2,}", line) for line in text.stdout.splitlines()[3:]]
    assert [row[1:4] for row in rows[1:]] == [[name, "nan", "n/a"] for name in
                                             ("replay", "ips", "snips", "dm", "dr", "clipped_ips")]


def test_the_direct_method_has_an_interval_only_from_a_refit_bootstrap(monkeypatch):
    monkeypatch.chdir(EXAMPLES)
    plain = invoke("replay", "--logs", "sends.parquet", "--policy", "candidate.yaml")
    assert plain.exit_code == 0, plain.output
    dm_row = next(re.split(r"\s{2,}", line) for line in plain.stdout.splitlines() if " dm " in line)
    assert dm_row[3] == "n/a" and "no interval: one from these rows alone would leave out" in dm_row[5]
    for flag in ("--bootstrap", "--refit-bootstrap"):
        out = json.loads(invoke("replay", "--logs", "sends.parquet", "--policy", "candidate.yaml", flag, "60",
                                "--json").stdout)
        dm = next(e for e in out["candidates"][0]["estimates"] if e["estimator"] == "dm")
        dr = next(e for e in out["candidates"][0]["estimates"] if e["estimator"] == "dr")
        assert dr["ci"][0] < dr["value"] < dr["ci"][1]
        if flag == "--bootstrap":  # the model held fixed: still no interval for DM
            assert dm["ci"] == [None, None] and dm["ci_method"] == "none"
        else:
            assert dm["ci_method"] == "bootstrap (refit)" and dm["ci"][0] < dm["value"] < dm["ci"][1]
            assert not any("no interval" in w for w in dm["warnings"])
    refused = invoke("replay", "--logs", "sends.parquet", "--policy", "candidate.yaml", "--estimators", "ips",
                     "--refit-bootstrap", "20")
    assert refused.exit_code != 0 and "Traceback" not in refused.output
    assert "refit_bootstrap: gives dm its interval, and dm is not among the estimators" in refused.output
    dask = invoke("replay", "--logs", "sends.parquet", "--policy", "candidate.yaml", "--dask", "local[1]",
                  "--refit-bootstrap", "20")
    assert dask.exit_code != 0 and "no --refit-bootstrap" in dask.output
