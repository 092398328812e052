"""The same numbers in one piece, chunk by chunk from a file, and on a local Dask cluster."""

from __future__ import annotations

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from distributed import Client, LocalCluster

from simulations.chunked import estimate_chunks
from simulations.column_maps import column_map
from simulations.dask_estimation import estimate_dask
from simulations.data import LoggedData, SimulationInputError
from simulations.estimators import estimate_policy_value
from simulations.logs import iter_logs, read_logs
from simulations.reward_model import fit_reward_model
from tests.simulations.close_estimates import assert_same_estimates
from tests.simulations.synthetic_logs import ACTIONS, TARGET, make_log

ESTIMATORS = ("ips", "snips", "dm", "dr", "clipped_ips", "clipped_dr")


def target_of(data: LoggedData) -> np.ndarray:
    """The synthetic target table, looked up by each row's segment feature."""
    segments = np.array([int(c["segment"][1:]) for c in data.contexts], dtype=int)
    return TARGET[segments]


@pytest.fixture(scope="module")
def log_file(tmp_path_factory):
    log = make_log(6000, np.random.default_rng(11), as_mappings=True)
    frame = pd.DataFrame(
        {
            "row": np.arange(6000),
            "variant": np.array(ACTIONS)[log.data.actions],
            "p": log.data.propensities,
            "clicked": log.data.rewards,
            "segment": [c["segment"] for c in log.data.contexts],
        }
    )
    frame.loc[[5, 4000], "p"] = 0.0  # two rows must be set aside, wherever they fall
    frame.loc[17, "variant"] = "bold"
    path = tmp_path_factory.mktemp("logs") / "sends.parquet"
    frame.to_parquet(path, row_group_size=1000)
    return path


COLUMNS = column_map(action="variant", reward="clicked", propensity="p", context=["segment"], actions=ACTIONS)


def test_chunks_and_dask_partitions_give_the_in_memory_numbers(log_file):
    whole = read_logs(log_file, COLUMNS)
    model = fit_reward_model(whole.data)
    q = model.predict(whole.data.contexts)
    one_shot = [estimate_policy_value(e, whole.data, target_of(whole.data), q, clip=3.0) for e in ESTIMATORS]

    chunked = estimate_chunks(
        iter_logs(log_file, COLUMNS, chunk_rows=997), target_of, ESTIMATORS, reward_model=model, clip=3.0
    )
    assert_same_estimates(chunked.estimates(), one_shot)
    assert {k: v.count for k, v in chunked.rejected.items()} == {"unknown_action": 1, "zero_propensity": 2}
    assert chunked.rows_read == 6000

    frame = dd.read_parquet(log_file, split_row_groups=True)
    assert frame.npartitions > 1
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        with Client(cluster):
            on_dask = estimate_dask(frame, COLUMNS, target_of, ESTIMATORS, reward_model=model, clip=3.0,
                                    row_column="row")
    assert_same_estimates(on_dask.estimates(), one_shot)
    assert on_dask.rejected == chunked.rejected  # same counts and the same row numbers as examples


def test_chunked_estimation_needs_a_fitted_model_for_dm_and_dr(log_file):
    with pytest.raises(SimulationInputError, match="reward_model: dm and dr over chunks need a reward model"):
        estimate_chunks(iter_logs(log_file, COLUMNS), target_of, ("dr",))
    with pytest.raises(SimulationInputError, match="columns.actions: required on Dask"):
        no_actions = column_map(action="variant", reward="clicked", propensity="p")
        estimate_dask(dd.read_parquet(log_file), no_actions, target_of, ("ips",))
