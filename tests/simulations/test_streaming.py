"""The streamed replay (what ``sendlab replay`` runs): the in-memory numbers for any chunking, the
probability file read in step with the log, records in ranges, the Poisson bootstrap, and a VW candidate
trained on the earlier part of a log."""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from simulations.candidates import CandidateSpec
from simulations.column_maps import column_map, default_column_map
from simulations.data import LoggedData, SimulationInputError
from simulations.estimates import PolicyEstimate
from simulations.estimators import estimator_state
from simulations.load_reports import LoadReport
from simulations.log_files import log_columns
from simulations.log_records import logs_from_records
from simulations.logs import read_logs
from simulations.merged_sums import estimate_lift
from simulations.refit_bootstrap import refit_models
from simulations.replay import evaluate_policy, load_probabilities, replay_report
from simulations.replay_files import replay_files
from simulations.reward_model import fit_reward_model
from simulations.sources import RecordSource
from simulations.streaming import ReplayRequest, replay_source, split_row
from tests.simulations.close_estimates import assert_same_estimates
from tests.simulations.synthetic_logs import ACTIONS, RATES, SHARES, TARGET, make_log, true_value

ALL = ("ips", "snips", "dm", "dr", "clipped_ips", "clipped_dr")


def sendlab_frame(n: int, seed: int) -> pd.DataFrame:
    """A synthetic log (known true values) in SendLab's own column names."""
    log = make_log(n, np.random.default_rng(seed), as_mappings=True)
    return pd.DataFrame({
        "decision_id": [f"d{i}" for i in range(n)],
        "action": np.array(ACTIONS)[log.data.actions],
        "propensity": log.data.propensities,
        "reward": log.data.rewards,
        "context.segment": [c["segment"] for c in log.data.contexts],
    })


@pytest.fixture(scope="module")
def log_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("streamed")
    frame = sendlab_frame(6000, 21)
    frame.to_parquet(folder / "sends.parquet", row_group_size=1000)
    frame.to_csv(folder / "sends.csv", index=False)
    return folder


@pytest.mark.parametrize(("name", "chunk_rows"), [("sends.parquet", 997), ("sends.parquet", 6000),
                                                  ("sends.csv", 1500)])
def test_a_streamed_replay_equals_the_in_memory_replay_for_any_chunking(log_files, name, chunk_rows):
    path = log_files / name
    columns = default_column_map(log_columns(path))
    candidate = CandidateSpec(policy="thompson", train_fraction=0.4)
    request = ReplayRequest(candidate=candidate, estimators=ALL)
    streamed = replay_files(path, columns, request, chunk_rows=chunk_rows)
    whole = read_logs(path, columns)
    expected = replay_report(whole.data, {"thompson": candidate}, train_fraction=0.4, estimators=ALL)
    assert_same_estimates([streamed.replay.logged], [expected.logged])
    got, want = streamed.replay.candidates[0], expected.candidates[0]
    assert_same_estimates(got.estimates, want.estimates)
    assert [e.estimator for e in got.estimates if e.estimator != "replay"] == list(ALL)
    for mine, theirs in zip(got.lifts, want.lifts, strict=True):
        assert mine.value == pytest.approx(theirs.value, abs=1e-12)
        assert mine.std_error == pytest.approx(theirs.std_error, rel=1e-9, nan_ok=True)  # NaN: dm's
    assert streamed.load.rows_read == 6000 and streamed.reward_model_rows == 2400


def test_lift_sums_equal_the_direct_paired_computation():
    # the merged-sum formula of LiftSums against estimate_lift's influence values on raw arrays
    log = make_log(3000, np.random.default_rng(4))
    q = fit_reward_model(log.data).predict(log.data.contexts)
    data = log.data
    from simulations.estimators import kernel_and_state
    from simulations.merged_sums import LiftSums

    for name in ("ips", "snips", "dr", "clipped_dr"):
        total = None
        for start in range(0, data.n, 700):
            part = data.rows(start, min(start + 700, data.n))
            u, d, state = kernel_and_state(name, part, log.target[start:start + 700], q[start:start + 700])
            sums = LiftSums.of(state, u, d, part.rewards)
            total = sums if total is None else total + sums
        direct = estimate_lift(name, data, log.target, q)
        merged = total.estimate()
        assert merged.value == pytest.approx(direct.value, abs=1e-12)
        assert merged.std_error == pytest.approx(direct.std_error, rel=1e-9)


def test_a_probability_file_is_read_in_step_with_the_log(tmp_path):
    frame = sendlab_frame(3000, 5)
    frame.loc[[7, 1500, 2999], "propensity"] = 0.0  # set aside wherever they fall
    log_path = tmp_path / "sends.parquet"
    frame.to_parquet(log_path, row_group_size=700)
    segments = frame["context.segment"].str[1:].astype(int).to_numpy()
    target = pd.DataFrame(TARGET[segments], columns=list(ACTIONS))
    target.to_csv(tmp_path / "p.csv", index=False)
    target[["emoji", "plain", "urgent"]].to_parquet(tmp_path / "p.parquet", row_group_size=400)
    columns = column_map(action="action", reward="reward", propensity="propensity",
                         context=["context.segment"], actions=ACTIONS)
    whole = read_logs(log_path, columns)
    array = load_probabilities(tmp_path / "p.csv", ACTIONS, kept_rows=whole.kept_rows, total_rows=3000)
    expected = replay_report(whole.data, {"p": array}, train_fraction=0.0, estimators=ALL)
    for file in ("p.csv", "p.parquet"):
        request = ReplayRequest(probabilities=tmp_path / file, estimators=ALL)
        streamed = replay_files(log_path, columns, request, chunk_rows=450)
        assert_same_estimates(streamed.replay.candidates[0].estimates, expected.candidates[0].estimates)
        assert {k: v.count for k, v in streamed.load.rejected.items()} == {"zero_propensity": 3}
    truth = true_value()
    for estimate in expected.candidates[0].estimates:
        if estimate.estimator in ("ips", "snips", "dr"):
            assert estimate.ci[0] <= truth <= estimate.ci[1]


@pytest.mark.parametrize("rows", [2999, 3001])
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_probability_file_of_the_wrong_length_is_refused(tmp_path, rows, suffix):
    frame = sendlab_frame(3000, 6)
    frame.to_parquet(tmp_path / "sends.parquet")
    probabilities = pd.DataFrame(np.full((rows, 3), 1 / 3), columns=list(ACTIONS))
    path = tmp_path / f"p{suffix}"
    probabilities.to_csv(path, index=False) if suffix == ".csv" else probabilities.to_parquet(path)
    columns = default_column_map(log_columns(tmp_path / "sends.parquet"))
    with pytest.raises(SimulationInputError, match=f"{rows} rows, but the log has 3000; one row per"):
        replay_files(tmp_path / "sends.parquet", columns,
                     ReplayRequest(probabilities=path, estimators=("ips",)), chunk_rows=500)


def test_record_chunks_in_ranges_are_the_records_in_one_piece():
    records = [SimpleNamespace(context={"device": "ios" if i % 3 else "web"}, arm=i % 2,
                               reward=float(i % 5 == 0), propensity=0.5 if i != 11 else 0.0)
               for i in range(103)]
    whole = logs_from_records(records, actions=["a", "b"], action=lambda r: "ab"[r.arm])

    def chunks():
        return (records[i:i + 10] for i in range(0, 103, 10))

    source = RecordSource(chunks, 103, ("a", "b"), action=lambda r: "ab"[r.arm])
    parts = list(source.chunks(5, 57))
    assert np.concatenate([p.kept_rows for p in parts]).tolist() == [i for i in range(5, 57) if i != 11]
    assert sum(p.rows_read for p in parts) == 52
    assert [p.data.actions.tolist() for p in parts][0] == whole.data.actions[5:10].tolist()
    assert parts[1].rejected["zero_propensity"].examples == ((11, "0.0"),)
    assert sum(p.rows_read for p in source.chunks()) == 103


def test_the_poisson_bootstrap_is_the_same_for_any_chunking_and_agrees_with_the_delta_method(log_files):
    path = log_files / "sends.parquet"
    columns = default_column_map(log_columns(path))
    candidate = CandidateSpec(variant="emoji")
    runs = [replay_files(path, columns, ReplayRequest(candidate=candidate, estimators=("ips", "snips"),
                                                bootstrap=400, seed=9), chunk_rows=c) for c in (997, 6000)]
    for one, other in zip(runs[0].replay.candidates[0].estimates, runs[1].replay.candidates[0].estimates,
                          strict=True):  # the same resamples; only the order of float additions differs
        assert one.ci == pytest.approx(other.ci, rel=1e-12)
        assert one.std_error == pytest.approx(other.std_error, rel=1e-9)
    normal = replay_files(path, columns, ReplayRequest(candidate=candidate, estimators=("ips", "snips")))
    for boot, plain in zip(runs[0].replay.candidates[0].estimates, normal.replay.candidates[0].estimates,
                           strict=True):
        assert boot.ci_method == "poisson bootstrap" and plain.ci_method == "normal"
        assert boot.value == plain.value
        # 400 replicates estimate a standard error to about 1/sqrt(800) = 3.5% (relative): allow 12%
        assert boot.std_error == pytest.approx(plain.std_error, rel=0.12)
        assert boot.ci[0] < boot.value < boot.ci[1]


def test_the_reward_model_is_fitted_on_a_bounded_sample(log_files):
    path = log_files / "sends.parquet"
    columns = default_column_map(log_columns(path))
    streamed = replay_files(path, columns, ReplayRequest(candidate=CandidateSpec(policy="fixed", train=False),
                                                     estimators=("dm", "dr"), model_rows=500))
    # each of the 3000 training rows is kept with probability 1/6: 500 +- 4 standard deviations (20)
    assert 420 <= streamed.reward_model_rows <= 580
    uniform = float(np.mean([true_value(np.tile(np.full(3, 1 / 3), (5, 1)))]))
    dr = streamed.replay.candidates[0].estimates[1]
    assert dr.estimator == "dr" and dr.ci[0] <= uniform <= dr.ci[1]


def test_a_vw_candidate_trained_earlier_beats_uniform_logging_where_context_drives_reward(tmp_path):
    # Each device has one variant that earns 0.35 (the others 0.05); logging was uniform, so its value is
    # 0.15. VW's contextual bandit, trained on the first half, should send most recipients their
    # device's variant on the second half: its estimated lift over logging must exceed its interval.
    rng = np.random.default_rng(17)
    n = 6000
    devices = np.array(["ios", "android", "web"])
    device = rng.integers(0, 3, n)
    action = rng.integers(0, 3, n)
    reward = (rng.random(n) < np.where(action == device, 0.35, 0.05)).astype(float)
    pd.DataFrame({
        "action": np.array(["plain", "urgent", "emoji"])[action],
        "propensity": np.full(n, 1 / 3),
        "reward": reward,
        "context.device": devices[device],
    }).to_parquet(tmp_path / "sends.parquet")
    columns = default_column_map(log_columns(tmp_path / "sends.parquet"))
    request = ReplayRequest(candidate=CandidateSpec(policy="vw"), estimators=("ips", "snips", "dr"), seed=2)
    result = replay_files(tmp_path / "sends.parquet", columns, request, chunk_rows=1000)
    replay = result.replay
    assert (replay.train_rows, replay.test_rows) == (3000, 3000)
    assert replay.logged.ci[0] <= 0.15 <= replay.logged.ci[1]
    (vw,) = replay.candidates
    assert vw.name == "vw" and not vw.deterministic
    for estimate, lift in zip(vw.estimates, vw.lifts, strict=True):
        assert lift.ci[0] > 0, lift  # the paired interval of the lift lies above zero
        assert estimate.ci[0] > replay.logged.value, estimate
        assert math.isfinite(estimate.value) and estimate.value > 0.25


def test_a_replay_request_is_checked_when_made_and_against_the_source(log_files):
    from simulations.sources import FileSource

    with pytest.raises(SimulationInputError, match="give exactly one of a candidate policy"):
        ReplayRequest()
    with pytest.raises(SimulationInputError, match="estimators: unknown \\['ipw'\\]"):
        ReplayRequest(candidate=CandidateSpec(variant="plain"), estimators=("ipw",))
    path = log_files / "sends.parquet"
    source = FileSource.open(path, default_column_map(log_columns(path)))
    with pytest.raises(SimulationInputError, match="candidate.variant: 'bold' is not one of"):
        replay_source(source, ReplayRequest(candidate=CandidateSpec(variant="bold"), estimators=("ips",)))
    with pytest.raises(SimulationInputError, match="estimators: only replay was asked"):
        replay_source(source, ReplayRequest(candidate=CandidateSpec(train=False), estimators=("replay",)))


@dataclass(frozen=True)
class MemorySource:
    """A :class:`~simulations.sources.LogSource` over rows already in memory (all usable)."""

    data: LoggedData
    chunk_rows: int = 700

    @property
    def rows(self) -> int:
        return self.data.n

    @property
    def action_names(self) -> tuple[str, ...]:
        return self.data.action_names

    def chunks(self, start_row: int = 0, stop_row: int | None = None):
        stop = self.rows if stop_row is None else min(stop_row, self.rows)
        for first in range(start_row, stop, self.chunk_rows):
            last = min(first + self.chunk_rows, stop)
            yield LoadReport(self.data.rows(first, last), {}, last - first, np.arange(first, last))


@pytest.fixture(scope="module")
def half_set_aside(tmp_path_factory):
    """4,000 sends; every other one of the first 2,000 has no propensity (set aside)."""
    frame = sendlab_frame(4000, 33)
    frame.loc[0:1999:2, "propensity"] = np.nan
    path = tmp_path_factory.mktemp("set_aside") / "sends.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("chunk_rows", [500, 1337, 4000])
def test_the_streamed_and_in_memory_replays_split_a_log_with_rows_set_aside_alike(half_set_aside, chunk_rows):
    # Both split by usable rows: 3,000 usable, the first 1,500 of them train. The streamed replay split
    # at the 2,000th row read (2,000 to train and 2,000 evaluated reported; 1,000 trained on) and its
    # estimates differed (IPS 0.109 against 0.116 on the tester's log).
    columns = default_column_map(log_columns(half_set_aside))
    candidate = CandidateSpec(policy="thompson", train_fraction=0.5)
    streamed = replay_files(half_set_aside, columns, ReplayRequest(candidate=candidate, estimators=ALL),
                            chunk_rows=chunk_rows)
    whole = read_logs(half_set_aside, columns)
    expected = replay_report(whole.data, {"thompson": candidate}, train_fraction=0.5, estimators=ALL)
    counts = (streamed.replay.train_rows, streamed.replay.test_rows)
    assert counts == (expected.train_rows, expected.test_rows) == (1500, 1500)
    assert streamed.load.rows_read == 4000 and streamed.load.rows_rejected == 1000
    assert streamed.reward_model_rows == 1500  # the model's sample is the rows trained on
    assert_same_estimates([streamed.replay.logged], [expected.logged])
    assert_same_estimates(streamed.replay.candidates[0].estimates, expected.candidates[0].estimates)


def test_the_split_row_counts_usable_rows_and_lands_inside_a_chunk():
    # rows 0-9 set aside: the first 5 of the 20 usable rows (10-14) train, evaluation starts at row 15
    records = [{"action": "a", "reward": 1.0, "propensity": 0.0 if i < 10 else 0.5} for i in range(30)]
    source = RecordSource(lambda: [records[i:i + 4] for i in range(0, 30, 4)], 30, ("a",))
    assert split_row(source, 0.25) == (15, 5)
    assert split_row(source, 0.0) == (0, 0)
    assert split_row(source, 0.04) == (0, 0)  # floor(20 * 0.04) = 0: nothing to train


def test_a_variant_logged_in_one_chunk_only_supports_the_target_in_the_merged_replay():
    log = make_log(3000, np.random.default_rng(5))
    order = np.argsort(log.data.actions == 2, kind="stable")  # every emoji send at the end
    data = log.data.take(order)
    target = np.tile([0.0, 0.0, 1.0], (data.n, 1))
    request = ReplayRequest(candidate=CandidateSpec(variant="emoji", train_fraction=0.0), estimators=ALL)
    streamed = replay_source(MemorySource(data, chunk_rows=500), request).replay.candidates[0].estimates
    whole = evaluate_policy(data, target, ("replay", *ALL))
    assert_same_estimates(streamed, whole)
    assert all(math.isfinite(e.value) and not any("no row logged" in w for w in e.warnings) for e in streamed)


def test_a_refit_bootstrap_gives_the_direct_method_an_interval_and_leaves_the_others_alone():
    log = make_log(1000, np.random.default_rng(6))
    candidate = CandidateSpec(variant="emoji", train_fraction=0.5)
    plain = replay_source(MemorySource(log.data), ReplayRequest(candidate=candidate)).replay.candidates[0]
    refit = replay_source(MemorySource(log.data), ReplayRequest(candidate=candidate, refit_bootstrap=50))
    by_name = {e.estimator: e for e in refit.replay.candidates[0].estimates}
    plain_by_name = {e.estimator: e for e in plain.estimates}
    assert plain_by_name["dm"].ci_method == "none" and math.isnan(plain_by_name["dm"].ci[0])
    dm = by_name["dm"]
    assert dm.ci_method == "bootstrap (refit)" and dm.ci[0] < dm.value < dm.ci[1]
    assert dm.value == plain_by_name["dm"].value and not any("no interval" in w for w in dm.warnings)
    # wider than the per-row spread alone: the model was fitted on 500 rows
    assert dm.std_error > 2 * estimator_state_of(plain_by_name["dm"], log)
    for name in ("ips", "snips", "dr"):
        assert by_name[name] == plain_by_name[name]
    lift = next(e for e in refit.replay.candidates[0].lifts if e.estimator == "dm lift")
    assert lift.ci_method == "bootstrap (refit)" and lift.ci[0] < lift.value < lift.ci[1]
    with pytest.raises(SimulationInputError, match="refit_bootstrap: gives dm its interval, and dm is not"):
        ReplayRequest(candidate=candidate, estimators=("ips",), refit_bootstrap=20)
    with pytest.raises(SimulationInputError, match="refit_bootstrap: must be 0 .* or at least 2, got 1"):
        ReplayRequest(candidate=candidate, refit_bootstrap=1)


def estimator_state_of(dm: PolicyEstimate, log) -> float:
    """DM's per-row standard error on the evaluated half (what the old interval was built from)."""
    test = log.data.rows(500, 1000)
    model = fit_reward_model(log.data.rows(0, 500))
    target = np.tile([0.0, 0.0, 1.0], (test.n, 1))
    state = estimator_state("dm", test, target, model.predict(test.contexts))
    assert state.value == pytest.approx(dm.value, rel=1e-12)
    return state.std_error


def test_refitted_models_score_like_models_fitted_on_each_resample():
    # categorical contexts: weighting the rows by their resample counts is the same fit as the resample
    log = make_log(600, np.random.default_rng(8), as_mappings=True)
    refits = refit_models(log.data, "auto", 7, np.random.default_rng(4))
    indices = np.random.default_rng(4).integers(0, log.data.n, size=(7, log.data.n))
    test = make_log(50, np.random.default_rng(9), as_mappings=True)
    want = [np.einsum("ij,ij->", test.target, fit_reward_model(log.data.take(i)).predict(test.data.contexts))
            for i in indices]
    np.testing.assert_allclose(refits.direct_sums(test.data.contexts, test.target), want, rtol=1e-10)


@pytest.mark.slow  # about 2 minutes: 2 x 1,000 replays, 100 refits each
@pytest.mark.parametrize(("train_fraction", "offset"), [(0.5, 40_000), (0.0, 50_000)])
def test_the_direct_methods_refit_interval_covers_at_the_nominal_rate(train_fraction, offset):
    # The candidate's DM interval from a refit bootstrap must cover the true value 93-97% of the time
    # over 1,000 logs of 1,000 sends (binomial SE 0.69 points). train_fraction 0.5: the model is fitted
    # on the first 500 rows and DM evaluated on the other 500; 0: the model's rows are the evaluated ones.
    # Measured: 0.950 and 0.953 (DR's normal interval on the same logs: 0.940 and 0.948). Without the refit
    # the interval (per-row spread only) covered 13% of such logs; it is now not shown.
    weights = np.array([0.2, 0.3, 0.5])
    truth = float(SHARES @ RATES @ weights)
    candidate = CandidateSpec(policy="fixed", options={"weights": weights.tolist()}, train=False,
                              train_fraction=train_fraction)
    seeds, covered = 1000, 0
    for s in range(seeds):
        log = make_log(1000, np.random.default_rng(offset + s))
        request = ReplayRequest(candidate=candidate, estimators=("dm",), refit_bootstrap=100, seed=s)
        (dm,) = replay_source(MemorySource(log.data), request).replay.candidates[0].estimates
        assert dm.ci_method == "bootstrap (refit)"
        covered += dm.ci[0] <= truth <= dm.ci[1]
    assert 0.93 <= covered / seeds <= 0.97, covered / seeds
