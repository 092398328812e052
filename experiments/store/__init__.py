"""The store: the tables of the decision and outcome log, the writes, the repository that owns every
read of an experiment's state, and the summary queries the results read.

The names most callers need are importable from here: ``from experiments.store import make_engine``.
"""

from experiments.store.schema import create_tables, upgrade_store
from experiments.store.tables import (
    OUTCOME_PENDING,
    SQLITE_BUSY_TIMEOUT_MS,
    SQLITE_SYNCHRONOUS,
    decisions_table,
    experiments_table,
    from_db_time,
    make_engine,
    orphans_table,
    outcomes_table,
    snapshots_table,
    to_db_time,
    versions_table,
)
from experiments.store.writes import (
    DECISION_COLUMNS,
    DecisionEncoding,
    decision_encoding,
    existing_keys,
    insert_decisions,
    insert_ignoring_duplicates,
    insert_snapshot,
    lock_for_learning,
)

__all__ = [
    "DECISION_COLUMNS",
    "OUTCOME_PENDING",
    "SQLITE_BUSY_TIMEOUT_MS",
    "SQLITE_SYNCHRONOUS",
    "DecisionEncoding",
    "create_tables",
    "decision_encoding",
    "decisions_table",
    "existing_keys",
    "experiments_table",
    "from_db_time",
    "insert_decisions",
    "insert_ignoring_duplicates",
    "insert_snapshot",
    "lock_for_learning",
    "make_engine",
    "orphans_table",
    "outcomes_table",
    "snapshots_table",
    "to_db_time",
    "upgrade_store",
    "versions_table",
]
