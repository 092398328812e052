"""``sendlab replay --dask``'s engine: a partitioned Parquet log evaluated chunk by chunk on a
``distributed.LocalCluster`` gives exactly (``==``) the estimates of the one-process streamed replay."""

from __future__ import annotations

import numpy as np
import pytest

from simulations.candidates import CandidateSpec
from simulations.column_maps import default_column_map
from simulations.dask_replay import dask_client, dask_runner
from simulations.data import SimulationInputError
from simulations.log_files import log_columns
from simulations.parquet_parts import PartitionedSource, parquet_files
from simulations.sources import FileSource
from simulations.streaming import ReplayRequest, replay_source
from tests.simulations.test_streaming import sendlab_frame

distributed = pytest.importorskip("distributed")
ESTIMATORS = ("ips", "snips", "dm", "dr")


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    """One log of 7,000 rows in one file and cut by day into 5 files of unequal sizes (some bad rows)."""
    folder = tmp_path_factory.mktemp("parts")
    frame = sendlab_frame(7000, 5)
    frame.loc[[10, 3001, 6999], "propensity"] = np.nan  # set aside, wherever they fall
    frame.to_parquet(folder / "whole.parquet", row_group_size=700)
    cuts = [0, 900, 2500, 2600, 5100, 7000]
    for day, (low, high) in enumerate(zip(cuts, cuts[1:], strict=False)):
        (folder / "log" / f"day=2026-01-0{day + 1}").mkdir(parents=True)
        frame.iloc[low:high].to_parquet(folder / "log" / f"day=2026-01-0{day + 1}" / "part-0.parquet",
                                        row_group_size=400)
    return folder


def replay(source, candidate=CandidateSpec(policy="thompson", train_fraction=0.3), bootstrap=0,
           run_chunks=None):
    request = ReplayRequest(candidate=candidate, estimators=ESTIMATORS, bootstrap=bootstrap)
    return replay_source(source, request, run_chunks=run_chunks).to_dict()


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=3, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as local, distributed.Client(local) as client:
        yield client


def test_the_parts_read_as_one_log(parts):
    columns = default_column_map(log_columns(parts / "whole.parquet"))
    source = PartitionedSource.open(parts / "log", columns, chunk_rows=1234)
    assert [p.parent.name for p in source.files] == [f"day=2026-01-0{d}" for d in range(1, 6)]
    assert source.rows == 7000 and source.action_names == FileSource.open(parts / "whole.parquet",
                                                                          columns).action_names
    assert parquet_files(str(parts / "log" / "*" / "*.parquet")) == source.files
    # the streamed replay of the parts equals that of the single file, to the last digit
    whole = FileSource.open(parts / "whole.parquet", columns, chunk_rows=1234)
    assert replay(source) == replay(whole)


@pytest.mark.parametrize("candidate", [CandidateSpec(policy="thompson", train_fraction=0.3),
                                       CandidateSpec(policy="epsilon_greedy", train_fraction=0.55),
                                       CandidateSpec(variant="urgent", train=False, train_fraction=0.0)],
                         ids=["thompson", "epsilon-greedy", "fixed"])
def test_a_cluster_replay_equals_the_streamed_one_exactly(parts, cluster, candidate):
    columns = default_column_map(log_columns(parts / "whole.parquet"))
    source = PartitionedSource.open(parts / "log", columns, chunk_rows=1100)  # chunks straddle files
    streamed = replay(source, candidate=candidate)
    on_dask = replay(source, candidate=candidate, run_chunks=dask_runner(cluster))
    assert on_dask == streamed
    assert on_dask["logs"]["rows_rejected"] == 3
    names = [e["estimator"] for e in on_dask["candidates"][0]["estimates"]]
    assert set(ESTIMATORS) <= set(names)


def test_a_cluster_of_worker_processes_gives_the_same_numbers(parts):
    columns = default_column_map(log_columns(parts / "whole.parquet"))
    source = PartitionedSource.open(parts / "log", columns, chunk_rows=2000)
    with dask_client("local[2]") as client:
        assert len(client.scheduler_info()["workers"]) == 2
        assert replay(source, run_chunks=dask_runner(client)) == replay(source)


def test_what_a_cluster_replay_cannot_do_is_refused(parts, cluster):
    columns = default_column_map(log_columns(parts / "whole.parquet"))
    source = PartitionedSource.open(parts / "log", columns)
    with pytest.raises(SimulationInputError, match="no bootstrap"):
        replay(source, bootstrap=50, run_chunks=dask_runner(cluster))
    for bad in ("local[0]", "local[x]", "local", "somewhere:8786"):
        with pytest.raises(SimulationInputError, match="--dask"), dask_client(bad):
            pass
