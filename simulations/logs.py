"""Loading logged sends from CSV, Parquet or the SendLab database, setting bad rows aside.

Every row read is either used or reported: rows with a missing or non-positive propensity, a missing
or unknown variant, a missing reward or one outside the declared range, or a missing feature are
counted by reason, with the first few row numbers and values as examples, and never reach the
estimators. Files are read in chunks, so memory stays bounded whatever the size of the log.

Which column holds what is a :class:`ColumnMap`, given as options or in a small YAML file::

    action: variant            # the chosen variant's id
    reward: clicked
    propensity: prob
    context: [device, segment, recency_days]
    position: slot             # optional
    actions: [plain, urgent]   # optional: the variants; others are rejected as unknown
    reward_range: [0, 1]       # optional: rewards outside it are rejected
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from simulations.data import LoggedData, SimulationInputError

REJECTION_REASONS = (
    "missing_action",
    "unknown_action",
    "missing_propensity",
    "zero_propensity",
    "invalid_propensity",
    "missing_reward",
    "reward_out_of_range",
    "missing_context",
)
_MAX_EXAMPLES = 3


class ColumnMap(BaseModel):
    """Which column of a log holds what.

    Attributes
    ----------
    action, reward, propensity : str
        Columns of the chosen variant's id, the reward and the logged propensity.
    context : tuple of str
        Feature columns (empty: no features).
    position : str or None
        Column of the slot's position, if any.
    actions : tuple of str or None
        The variants, in the order of the estimators' columns; ``None`` takes the sorted distinct
        values of the action column (one extra pass over that column).
    reward_range : tuple of float or None
        Inclusive bounds for the reward.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: str
    reward: str
    propensity: str
    context: tuple[str, ...] = ()
    position: str | None = None
    actions: tuple[str, ...] | None = None
    reward_range: tuple[float, float] | None = None

    @field_validator("actions", mode="before")
    @classmethod
    def _actions_as_strings(cls, value: object) -> object:
        if value is None:
            return None
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise ValueError("must be a list of variant ids")
        return tuple(str(v) for v in value)

    @model_validator(mode="after")
    def _check(self) -> ColumnMap:
        if self.actions is not None and (not self.actions or len(set(self.actions)) != len(self.actions)):
            raise ValueError(f"actions must be a non-empty list of distinct ids, got {list(self.actions)}")
        if self.reward_range is not None and not self.reward_range[0] <= self.reward_range[1]:
            raise ValueError(f"reward_range low must not exceed high, got {list(self.reward_range)}")
        used = [self.action, self.reward, self.propensity, *self.context]
        if self.position:
            used.append(self.position)
        if len(set(used)) != len(used):
            raise ValueError(f"a column is mapped twice: {used}")
        return self

    @property
    def columns(self) -> list[str]:
        """Every column read from the file."""
        return [self.action, self.reward, self.propensity, *self.context] + (
            [self.position] if self.position else []
        )


def column_map(**fields: object) -> ColumnMap:
    """A :class:`ColumnMap`, with validation errors turned into :class:`SimulationInputError`."""
    try:
        return ColumnMap(**fields)
    except ValidationError as exc:
        raise SimulationInputError(_pydantic_message("column map", exc)) from None


def load_column_map(path: str | Path) -> ColumnMap:
    """Read a :class:`ColumnMap` from a YAML file (keys as in the module docstring)."""
    text = Path(path).read_text()
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SimulationInputError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise SimulationInputError(f"{path}: expected a mapping of column roles to column names")
    try:
        return ColumnMap(**raw)
    except ValidationError as exc:
        raise SimulationInputError(_pydantic_message(str(path), exc)) from None


def _pydantic_message(where: str, exc: ValidationError) -> str:
    problems = [f"{'.'.join(map(str, e['loc'])) or 'map'}: {e['msg']}" for e in exc.errors()]
    return f"{where}: " + "; ".join(problems)


@dataclass(frozen=True)
class RejectedRows:
    """Rows set aside for one reason.

    Attributes
    ----------
    count : int
    examples : tuple of (int, str)
        The first few ``(row number, offending value)``; rows are numbered from 0 in read order.
    """

    count: int
    examples: tuple[tuple[int, str], ...] = ()

    def __add__(self, other: RejectedRows) -> RejectedRows:
        return RejectedRows(self.count + other.count, (self.examples + other.examples)[:_MAX_EXAMPLES])


@dataclass(frozen=True)
class LoadReport:
    """What a load produced: the usable rows and the rows set aside, by reason.

    Attributes
    ----------
    data : LoggedData
        The rows that passed every check, in read order.
    rejected : mapping of str to RejectedRows
        ``reason -> rows``, for reasons in ``REJECTION_REASONS`` that occurred.
    rows_read : int
        Rows read, used or not.
    kept_rows : ndarray of int, shape (data.n,)
        For each used row, its row number in the source (counted from 0 in read order), to align
        files that have one row per logged send, such as per-row action probabilities.
    """

    data: LoggedData
    rejected: Mapping[str, RejectedRows] = field(default_factory=dict)
    rows_read: int = 0
    kept_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def rows_rejected(self) -> int:
        """Rows set aside, all reasons together."""
        return sum(r.count for r in self.rejected.values())

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready summary (without the data)."""
        return {
            "rows_read": self.rows_read,
            "rows_used": self.data.n,
            "rows_rejected": self.rows_rejected,
            "rejected": {
                reason: {"count": r.count, "examples": [{"row": i, "value": v} for i, v in r.examples]}
                for reason, r in self.rejected.items()
            },
        }


def concat_logged(parts: Sequence[LoggedData]) -> LoggedData:
    """Rows of several logs over the same variants, one after the other."""
    if not parts:
        raise SimulationInputError("parts: nothing to concatenate")
    names = parts[0].action_names
    for part in parts:
        if part.action_names != names:
            raise SimulationInputError(f"action_names: {part.action_names} differ from {names}")
    if all(isinstance(p.contexts, np.ndarray) for p in parts):
        contexts: object = np.concatenate([p.contexts for p in parts])
    else:
        contexts = [c for p in parts for c in (p.context_mappings() if isinstance(p.contexts, np.ndarray)
                                               else p.contexts)]
    has_positions = all(p.positions is not None for p in parts)
    return LoggedData(
        contexts=contexts,
        actions=np.concatenate([p.actions for p in parts]),
        rewards=np.concatenate([p.rewards for p in parts]),
        propensities=np.concatenate([p.propensities for p in parts]),
        action_names=names,
        positions=np.concatenate([p.positions for p in parts]) if has_positions else None,
    )


def merge_reports(reports: Iterable[LoadReport]) -> LoadReport:
    """One report for several chunks read in order."""
    reports = list(reports)
    if not reports:
        raise SimulationInputError("reports: nothing to merge")
    rejected: dict[str, RejectedRows] = {}
    for report in reports:
        for reason, rows in report.rejected.items():
            rejected[reason] = rejected[reason] + rows if reason in rejected else rows
    return LoadReport(
        data=concat_logged([r.data for r in reports]),
        rejected={r: rejected[r] for r in REJECTION_REASONS if r in rejected},
        rows_read=sum(r.rows_read for r in reports),
        kept_rows=np.concatenate([r.kept_rows for r in reports]),
    )


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _validate(
    action_values: pd.Series,
    reward_values: pd.Series,
    propensity_values: pd.Series,
    contexts: pd.DataFrame | list[Mapping[str, object]],
    position_values: pd.Series | None,
    action_names: tuple[str, ...],
    reward_range: tuple[float, float] | None,
    row_numbers: np.ndarray,
) -> LoadReport:
    """Check one chunk row by row (vectorised) and split it into used rows and rejections."""
    n = len(action_values)
    actions_text = action_values.astype("string")
    rewards = pd.to_numeric(reward_values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    propensities = pd.to_numeric(propensity_values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    action_to_index = {name: i for i, name in enumerate(action_names)}
    indices = actions_text.map(action_to_index).to_numpy(dtype=float, na_value=np.nan)
    missing_action = actions_text.isna().to_numpy()
    if isinstance(contexts, pd.DataFrame):
        missing_context = contexts.isna().any(axis=1).to_numpy() if contexts.shape[1] else np.zeros(n, bool)
    else:
        missing_context = np.array([any(map(_is_missing, c.values())) for c in contexts], dtype=bool)
    low, high = reward_range if reward_range is not None else (-math.inf, math.inf)
    checks = {
        "missing_action": missing_action,
        "unknown_action": ~missing_action & np.isnan(indices),
        "missing_propensity": np.isnan(propensities),
        "zero_propensity": propensities == 0,
        "invalid_propensity": (propensities < 0) | (propensities > 1) | np.isinf(propensities),
        "missing_reward": ~np.isfinite(rewards),
        "reward_out_of_range": np.isfinite(rewards) & ((rewards < low) | (rewards > high)),
        "missing_context": missing_context,
    }
    sources = {
        "missing_action": action_values, "unknown_action": action_values,
        "missing_propensity": propensity_values, "zero_propensity": propensity_values,
        "invalid_propensity": propensity_values, "missing_reward": reward_values,
        "reward_out_of_range": reward_values,
    }
    taken = np.zeros(n, dtype=bool)
    rejected: dict[str, RejectedRows] = {}
    for reason in REJECTION_REASONS:
        rows = checks[reason] & ~taken
        taken |= rows
        count = int(rows.sum())
        if count:
            where = np.flatnonzero(rows)[:_MAX_EXAMPLES]
            if reason == "missing_context":
                values = ["a feature is missing"] * len(where)
            else:
                values = [str(sources[reason].iloc[i]) for i in where]
            rejected[reason] = RejectedRows(
                count, tuple((int(row_numbers[i]), v) for i, v in zip(where, values, strict=True))
            )
    keep = ~taken
    if isinstance(contexts, pd.DataFrame):
        if contexts.shape[1]:
            kept_contexts: object = contexts[keep].to_dict("records")
        else:
            kept_contexts = np.zeros((int(keep.sum()), 0))
    else:
        kept_contexts = [c for c, k in zip(contexts, keep, strict=True) if k]
    positions = None
    if position_values is not None:
        positions = pd.to_numeric(position_values, errors="coerce").to_numpy(dtype=float)[keep]
    data = LoggedData(
        contexts=kept_contexts,
        actions=indices[keep].astype(np.int64),
        rewards=rewards[keep],
        propensities=propensities[keep],
        action_names=action_names,
        positions=positions,
    )
    return LoadReport(data, rejected, n, np.asarray(row_numbers, dtype=np.int64)[keep])


def _open_chunks(path: Path, columns: list[str], chunk_rows: int, action_col: str) -> Iterator[pd.DataFrame]:
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        file = pq.ParquetFile(path)
        present = set(file.schema_arrow.names)
        _check_columns(path, columns, present)
        for batch in file.iter_batches(batch_size=chunk_rows, columns=columns):
            yield batch.to_pandas()
    elif suffix in (".csv", ".gz", ".txt", ".tsv"):
        sep = "\t" if suffix == ".tsv" else ","
        header = pd.read_csv(path, nrows=0, sep=sep)
        _check_columns(path, columns, set(header.columns))
        yield from pd.read_csv(
            path, usecols=columns, chunksize=chunk_rows, sep=sep, dtype={action_col: "string"}
        )
    else:
        raise SimulationInputError(f"{path}: unknown log format {suffix!r}; expected .csv or .parquet")


def _check_columns(path: Path, columns: list[str], present: set[str]) -> None:
    missing = [c for c in columns if c not in present]
    if missing:
        raise SimulationInputError(
            f"{path}: column(s) {', '.join(map(repr, missing))} not found; the file has {sorted(present)}"
        )


def _distinct_actions(path: Path, action_col: str, chunk_rows: int) -> tuple[str, ...]:
    seen: set[str] = set()
    for chunk in _open_chunks(path, [action_col], chunk_rows, action_col):
        seen.update(chunk[action_col].dropna().astype(str).unique().tolist())
    if not seen:
        raise SimulationInputError(f"{path}: the action column {action_col!r} has no values")
    return tuple(sorted(seen))


def iter_logs(path: str | Path, columns: ColumnMap, *, chunk_rows: int = 100_000) -> Iterator[LoadReport]:
    """Read a CSV or Parquet log chunk by chunk.

    Parameters
    ----------
    path : str or Path
        ``.csv`` (or ``.csv.gz``) or ``.parquet``.
    columns : ColumnMap
        Which column holds what.
    chunk_rows : int
        Rows per chunk.

    Yields
    ------
    LoadReport
        One per chunk, with row numbers counted from the start of the file.
    """
    if chunk_rows < 1:
        raise SimulationInputError(f"chunk_rows: must be at least 1, got {chunk_rows}")
    path = Path(path)
    if not path.exists():
        raise SimulationInputError(f"logs: file {path} does not exist")
    names = columns.actions or _distinct_actions(path, columns.action, chunk_rows)
    first_row = 0
    for chunk in _open_chunks(path, columns.columns, chunk_rows, columns.action):
        yield validate_frame(chunk, columns, names, first_row=first_row)
        first_row += len(chunk)


def validate_frame(
    frame: pd.DataFrame,
    columns: ColumnMap,
    action_names: Sequence[str],
    *,
    first_row: int = 0,
    row_numbers: np.ndarray | None = None,
) -> LoadReport:
    """Check a table of logged sends and split it into usable rows and rejections.

    Parameters
    ----------
    frame : pandas.DataFrame
        Holds at least ``columns.columns``.
    columns : ColumnMap
    action_names : sequence of str
        The variants; other actions are rejected as unknown.
    first_row : int
        Number of the frame's first row in its source (rows are numbered consecutively from it).
    row_numbers : ndarray of int, shape (len(frame),), optional
        Explicit row numbers instead of ``first_row``.

    Returns
    -------
    LoadReport
    """
    _check_columns(Path("frame"), columns.columns, set(frame.columns))
    frame = frame.reset_index(drop=True)
    numbers = first_row + np.arange(len(frame)) if row_numbers is None else np.asarray(row_numbers)
    return _validate(
        frame[columns.action],
        frame[columns.reward],
        frame[columns.propensity],
        frame[list(columns.context)],
        frame[columns.position] if columns.position else None,
        tuple(str(a) for a in action_names),
        columns.reward_range,
        numbers,
    )


def load_logs(
    path: str | Path,
    *,
    action_col: str,
    reward_col: str,
    propensity_col: str,
    context_cols: Sequence[str] | None = None,
    position_col: str | None = None,
    actions: Sequence[str] | None = None,
    reward_range: tuple[float, float] | None = None,
    chunk_rows: int = 100_000,
) -> LoadReport:
    """Load a whole CSV or Parquet log (read in chunks) into one :class:`LoadReport`.

    The keyword arguments are the fields of :class:`ColumnMap`; see :func:`iter_logs`.

    Examples
    --------
    >>> import pandas as pd, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> pd.DataFrame({"v": ["a", "b", "c"], "p": [0.5, 0.0, 0.5], "r": [1, 0, 1]}).to_csv(
    ...     folder / "log.csv", index=False)
    >>> report = load_logs(folder / "log.csv", action_col="v", reward_col="r", propensity_col="p",
    ...                    actions=["a", "b"])
    >>> report.data.n, {k: v.count for k, v in report.rejected.items()}
    (1, {'unknown_action': 1, 'zero_propensity': 1})
    """
    columns = column_map(
        action=action_col,
        reward=reward_col,
        propensity=propensity_col,
        context=tuple(context_cols or ()),
        position=position_col,
        actions=None if actions is None else tuple(actions),
        reward_range=reward_range,
    )
    return read_logs(path, columns, chunk_rows=chunk_rows)


def read_logs(path: str | Path, columns: ColumnMap, *, chunk_rows: int = 100_000) -> LoadReport:
    """Load a whole log described by a :class:`ColumnMap` (see :func:`iter_logs`)."""
    return merge_reports(iter_logs(path, columns, chunk_rows=chunk_rows))


def _field(record: object, name: str, default: object = ...) -> object:
    if isinstance(record, Mapping):
        if name in record:
            return record[name]
    elif hasattr(record, name):
        return getattr(record, name)
    if default is ...:
        raise SimulationInputError(f"records: a record has no {name!r} field")
    return default


def combination_label(variants: Mapping[str, object]) -> str:
    """The action id of a multi-slot decision: ``"subject=plain|cta=shop"`` (slots in their given order)."""
    return "|".join(f"{slot}={variant}" for slot, variant in variants.items())


def _action_of(record: object, action: str | Callable[[object], object]) -> object:
    if callable(action):
        return action(record)
    value = _field(record, action, None)
    if value is None and action == "action":
        variants = _field(record, "variants", None)
        if isinstance(variants, Mapping) and variants:
            return combination_label(variants)
    return value


def logs_from_records(
    records: Iterable[object],
    *,
    actions: Sequence[str] | None = None,
    reward_range: tuple[float, float] | None = None,
    action: str | Callable[[object], object] = "action",
) -> LoadReport:
    """Logged sends from rows already fetched (for example exported from the SendLab database).

    Parameters
    ----------
    records : iterable
        Mappings or objects with ``context`` (a mapping of features, or None), the action,
        ``reward``, ``propensity`` and optionally ``position``.
    actions : sequence of str, optional
        The variants; by default the sorted distinct actions of the records.
    reward_range : (float, float), optional
        Inclusive bounds for the reward.
    action : str or callable
        The field holding the chosen variant's id, or a function of the record returning it. With
        the default ``"action"``, a record without that field but with ``variants`` (a mapping of
        slot to variant id, as in SendLab's exported decisions) gets :func:`combination_label`.

    Returns
    -------
    LoadReport
    """
    rows = list(records)
    contexts = [dict(_field(r, "context", None) or {}) for r in rows]
    action_values = pd.Series([_action_of(r, action) for r in rows], dtype=object)
    action_values = action_values.where(action_values.isna(), action_values.astype(str))
    if actions is None:
        distinct = sorted(set(action_values.dropna()))
        if not distinct:
            raise SimulationInputError("records: no record has an action")
        actions = distinct
    positions = [_field(r, "position", None) for r in rows]
    return _validate(
        action_values,
        pd.Series([_field(r, "reward") for r in rows], dtype=object),
        pd.Series([_field(r, "propensity") for r in rows], dtype=object),
        contexts,
        None if all(p is None for p in positions) else pd.Series(positions, dtype=object),
        column_map(action="a", reward="r", propensity="p", actions=tuple(actions)).actions or (),
        column_map(action="a", reward="r", propensity="p", reward_range=reward_range).reward_range,
        np.arange(len(rows)),
    )
