"""A replay whose evaluation runs on a Dask cluster: what ``sendlab replay --dask`` runs.

The log is a :class:`~simulations.parquet_parts.PartitionedSource` (Parquet files that every worker can
read). The client trains the candidate and fits the reward model as
:func:`simulations.streaming.replay_source` does (those passes are sequential by nature); then each chunk
of the evaluated rows is one task: a worker reads its row groups, computes the candidate's probabilities,
the reward model's predictions and every estimator's sums, and sends the sums back. The chunks are the
ones the streaming replay takes and the sums merge exactly (:class:`~simulations.exact_sum.ExactSum`), so
every estimate, standard error and interval equals the one-process replay's, to the last digit.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from simulations.data import SimulationInputError
from simulations.streaming import ChunkRunner

#: Most workers ``local[N]`` starts.
MAX_LOCAL_WORKERS = 64
#: Seconds to wait for a scheduler to answer.
CONNECT_SECONDS = 10


def dask_runner(client: Any) -> ChunkRunner:
    """A :data:`~simulations.streaming.ChunkRunner` submitting each chunk as a task to ``client``
    (a ``distributed.Client``); the results come back in the chunks' order."""

    def run(task: Callable[[int, int], Any], ranges: list[tuple[int, int]]) -> Iterator[Any]:
        futures = client.map(task, [r[0] for r in ranges], [r[1] for r in ranges], pure=False)
        for future in futures:
            yield future.result()
            future.release()

    return run


@contextmanager
def dask_client(where: str) -> Iterator[Any]:
    """A ``distributed.Client`` of a scheduler address (``tcp://host:8786``), or of a
    ``LocalCluster`` of ``N`` single-threaded worker processes started for the call (``local[N]``).

    Raises
    ------
    SimulationInputError
        For any other text, or a scheduler that does not answer within :data:`CONNECT_SECONDS`.
    """
    from distributed import Client, LocalCluster

    text = where.strip()
    if text.startswith("local"):
        match = re.fullmatch(r"local\[(\d+)\]", text)
        if match is None or not 1 <= int(match[1]) <= MAX_LOCAL_WORKERS:
            raise SimulationInputError(
                f"--dask: {where!r}: write local[N] with N from 1 to {MAX_LOCAL_WORKERS}")
        with LocalCluster(n_workers=int(match[1]), threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            yield client
        return
    if not re.fullmatch(r"[a-z+]+://\S+", text):
        raise SimulationInputError(
            f"--dask: {where!r}: give a scheduler address (tcp://host:8786) or local[N]")
    try:
        client = Client(text, timeout=CONNECT_SECONDS)
    except (OSError, TimeoutError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SimulationInputError(f"--dask: cannot reach the scheduler at {text}: {reason}") from exc
    with client:
        yield client
