r"""Reward models :math:`\hat q(x, a)` for the direct method and doubly robust estimators.

A reward model is fitted on logged sends and predicts the expected reward of every variant for every
row. Three kinds:

- ``logistic``: one L2-regularised logistic regression per variant (binary rewards), fitted by
  Newton's method (iteratively reweighted least squares) in numpy;
- ``linear``: one ridge regression per variant (any reward);
- ``vw``: Vowpal Wabbit's regression with the variant crossed with the features (``-q ax``).

Contexts are turned into a design matrix by :class:`ContextEncoder`: numbers are standardised,
strings and booleans one-hot encoded; the first column is the intercept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np

from simulations.data import Contexts, LoggedData, SimulationInputError, context_mappings, is_frame
from simulations.feature_columns import FeatureColumn, FeatureColumns

if TYPE_CHECKING:
    import pandas as pd

RewardModelKind = Literal["auto", "logistic", "linear", "vw"]


def logistic(eta: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    r"""The logistic function :math:`1 / (1 + e^{-\eta})`, elementwise, into ``out`` if given (which
    may be ``eta`` itself). In numpy: importing ``scipy.special`` for its ``expit`` costs more than a
    replay's predictions."""
    out = np.negative(eta, out=out)
    with np.errstate(over="ignore"):  # e^{-eta} overflows to inf for eta < -709: the value is 0
        np.exp(out, out=out)
    out += 1.0
    return np.reciprocal(out, out=out)


class RewardModel(Protocol):
    """Anything that predicts the expected reward of each of ``k`` variants per row."""

    def predict(self, contexts: Contexts) -> np.ndarray:
        """Predictions of shape ``(n, k)``."""
        ...


@dataclass(frozen=True)
class ContextEncoder:
    """Maps contexts to a numeric design matrix with an intercept column.

    Attributes
    ----------
    numeric : tuple of str
        Numeric features, in column order (for array contexts, ``x0, x1, ...``).
    means, scales : tuple of float
        Standardisation of each numeric feature.
    categories : tuple of (str, object)
        One-hot columns ``(feature, value)``, after the numeric ones.
    """

    numeric: tuple[str, ...]
    means: tuple[float, ...]
    scales: tuple[float, ...]
    categories: tuple[tuple[str, object], ...]

    @classmethod
    def fit(cls, contexts: Contexts) -> ContextEncoder:
        """Learn the columns from contexts (an ``(n, d)`` array, a DataFrame, FeatureColumns or ``n``
        mappings)."""
        if isinstance(contexts, FeatureColumns):
            return cls._fit_columns(contexts)
        if is_frame(contexts):
            columns = _frame_columns(contexts)
            if columns is None:
                return cls.fit(context_mappings(contexts))
            numeric_columns, category_columns = columns
            pairs = {(key, value) for key, values in category_columns.items() for value in values}
            return cls(*_standardisation_of(numeric_columns), tuple(sorted(pairs, key=repr)))
        if isinstance(contexts, np.ndarray):
            matrix = np.asarray(contexts, dtype=float).reshape(len(contexts), -1)
            names = tuple(f"x{j}" for j in range(matrix.shape[1]))
            return cls(names, *_standardisation(matrix), ())
        numeric: dict[str, list[float]] = {}
        categories: dict[tuple[str, object], None] = {}
        for row in contexts:
            for key, value in row.items():
                if isinstance(value, bool) or isinstance(value, str):
                    categories[(key, value)] = None
                elif isinstance(value, int | float) and math.isfinite(value):
                    numeric.setdefault(key, []).append(float(value))
                else:
                    raise SimulationInputError(f"contexts: feature {key!r} has unsupported value {value!r}")
        arrays = {key: np.asarray(values) for key, values in numeric.items()}
        return cls(*_standardisation_of(arrays), tuple(sorted(categories, key=repr)))

    @classmethod
    def _fit_columns(cls, contexts: FeatureColumns) -> ContextEncoder:
        """:meth:`fit` on feature columns (the same encoder as for the same rows as a DataFrame)."""
        numeric = {c.name: c.values.astype(float, copy=False) for c in contexts.columns if c.is_numeric}
        pairs = set()
        for column in contexts.columns:
            if column.labels is not None:
                seen = np.bincount(column.values[column.values >= 0], minlength=len(column.labels))
                pairs.update((column.name, column.labels[i]) for i in np.flatnonzero(seen))
        return cls(*_standardisation_of(numeric), tuple(sorted(pairs, key=repr)))

    @property
    def width(self) -> int:
        """Number of columns, intercept included."""
        return 1 + len(self.numeric) + len(self.categories)

    def transform(self, contexts: Contexts) -> np.ndarray:
        """The design matrix, shape ``(n, width)``; unseen categories are all-zero, missing numbers 0."""
        n = len(contexts)
        out = np.zeros((n, self.width))
        out[:, 0] = 1.0
        if isinstance(contexts, np.ndarray):
            matrix = np.asarray(contexts, dtype=float).reshape(n, -1)
            if matrix.shape[1] != len(self.numeric):
                raise SimulationInputError(
                    f"contexts: expected {len(self.numeric)} feature columns, got {matrix.shape[1]}"
                )
            out[:, 1 : 1 + matrix.shape[1]] = (matrix - np.array(self.means)) / np.array(self.scales)
            return out
        if isinstance(contexts, FeatureColumns):
            return self._transform_columns(contexts, out)
        if is_frame(contexts):
            if _frame_columns(contexts) is None:
                return self.transform(context_mappings(contexts))
            return self._transform_frame(contexts, out)
        numeric_index = {name: j for j, name in enumerate(self.numeric)}
        category_index = {key: j for j, key in enumerate(self.categories)}
        offset = 1 + len(self.numeric)
        for i, row in enumerate(contexts):
            for key, value in row.items():
                if isinstance(value, bool) or isinstance(value, str):
                    j = category_index.get((key, value))
                    if j is not None:
                        out[i, offset + j] = 1.0
                elif key in numeric_index:
                    j = numeric_index[key]
                    out[i, 1 + j] = (float(value) - self.means[j]) / self.scales[j]
        return out

    def _transform_columns(self, contexts: FeatureColumns, out: np.ndarray) -> np.ndarray:
        """:meth:`transform` of feature columns (the same numbers as for the same rows as a DataFrame)."""
        by_name = {c.name: c for c in contexts.columns}
        for j, name in enumerate(self.numeric):
            column = by_name.get(name)
            if column is not None and column.is_numeric:
                out[:, 1 + j] = (column.values - self.means[j]) / self.scales[j]
        flat = out.reshape(-1)  # a view: out is C-contiguous
        starts = np.arange(contexts.rows) * out.shape[1]
        for column, design in self._label_columns(contexts):
            target = design[column.values]
            hit = np.flatnonzero(target >= 0)
            flat[starts[hit] + target[hit]] = 1.0
        return out

    def scores(self, contexts: Contexts, coefficients: np.ndarray) -> np.ndarray:
        """``transform(contexts) @ coefficients.T``, shape ``(n, k)``, for ``coefficients`` of shape
        ``(k, width)``.

        Feature columns are not expanded into the design matrix. The text features' terms and the
        intercept are looked up: a table holds their sum for each combination of labels (up to
        :data:`_LABEL_TABLE_ROWS` combinations a table; more text features take more tables), and each
        numeric feature adds its standardised value times its coefficients. The terms are those of the
        product, added in another order.
        """
        if not isinstance(contexts, FeatureColumns):
            # numpy's own loop: a product this thin gains nothing from BLAS's thread pool, which on
            # busy cores costs more than the arithmetic
            return np.einsum("ij,kj->ik", self.transform(contexts), coefficients)
        tables = self._label_tables(contexts, coefficients)
        if tables:
            out = np.take(tables[0][1], tables[0][0], axis=0)
        else:
            out = np.empty((contexts.rows, coefficients.shape[0]))
            out[:] = coefficients[:, 0]
        term = np.empty_like(out) if len(tables) > 1 or self.numeric else out
        for codes, table in tables[1:]:
            out += np.take(table, codes, axis=0, out=term)
        by_name = {c.name: c for c in contexts.columns}
        for j, name in enumerate(self.numeric):
            column = by_name.get(name)
            if column is not None and column.is_numeric:
                standardised = (column.values - self.means[j]) / self.scales[j]
                out += np.multiply(standardised[:, None], coefficients[:, 1 + j], out=term)
        return out

    def _label_tables(self, contexts: FeatureColumns,
                      coefficients: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """For groups of text features: each row's combination of labels (shape (n,)) and the table of
        the sum of their coefficients per combination (shape (combinations, k)); the first table adds
        the intercept."""
        tables: list[tuple[np.ndarray, np.ndarray]] = []
        for column, design in self._label_columns(contexts):
            # row 0 for a missing value, row 1 + i for label i; zero for a label the encoder lacks
            own = np.zeros((len(design), coefficients.shape[0]))
            known = np.flatnonzero(design[:-1] >= 0)
            own[1 + known] = coefficients[:, design[known]].T
            codes = column.values.astype(np.int64) + 1
            if tables and len(tables[-1][1]) * len(own) <= _LABEL_TABLE_ROWS:
                before, table = tables[-1]
                combined = (table[:, None, :] + own[None, :, :]).reshape(-1, coefficients.shape[0])
                tables[-1] = (before * len(own) + codes, combined)
            else:
                tables.append((codes, coefficients[:, 0] + own if not tables else own))
        return tables

    def _label_columns(self, contexts: FeatureColumns) -> list[tuple[FeatureColumn, np.ndarray]]:
        """Each text feature with the design column of each of its labels (then of a missing value,
        code -1), -1 for a label not among :attr:`categories`."""
        offset = 1 + len(self.numeric)
        category_index = {key: offset + j for j, key in enumerate(self.categories)}
        return [(c, np.array([category_index.get((c.name, label), -1) for label in c.labels] + [-1],
                             dtype=np.int64))
                for c in contexts.columns if c.labels is not None]

    def _transform_frame(self, frame: pd.DataFrame, out: np.ndarray) -> np.ndarray:
        """:meth:`transform` column by column (the same numbers as one mapping per row)."""
        for j, name in enumerate(self.numeric):
            if name in frame.columns and _is_numeric(frame[name]):
                values = frame[name].to_numpy(dtype=float)
                out[:, 1 + j] = (values - self.means[j]) / self.scales[j]
        offset = 1 + len(self.numeric)
        for j, (key, value) in enumerate(self.categories):
            if key not in frame.columns:
                continue
            column = frame[key]
            boolean = _is_bool(column)
            if (isinstance(value, bool) and boolean) or (isinstance(value, str) and not _is_numeric(column)
                                                         and not boolean):
                out[:, offset + j] = (column == value).to_numpy(dtype=bool, na_value=False)
        return out


#: At most this many combinations of labels in one table of :meth:`ContextEncoder.scores`.
_LABEL_TABLE_ROWS = 4096


def _is_bool(column: pd.Series) -> bool:
    from pandas.api.types import is_bool_dtype

    return bool(is_bool_dtype(column))


def _is_numeric(column: pd.Series) -> bool:
    from pandas.api.types import is_numeric_dtype

    return bool(is_numeric_dtype(column)) and not _is_bool(column)


def _frame_columns(frame: pd.DataFrame) -> tuple[dict[str, np.ndarray], dict[str, list[object]]] | None:
    """Numeric columns as arrays and the distinct values of categorical ones (strings or booleans);
    ``None`` when a column mixes kinds (then contexts are handled one mapping per row)."""
    numeric: dict[str, np.ndarray] = {}
    categories: dict[str, list[object]] = {}
    for name in frame.columns:
        column = frame[name]
        if _is_numeric(column):
            numeric[str(name)] = column.to_numpy(dtype=float)
            continue
        values = column.dropna().unique().tolist()
        if not all(isinstance(v, bool | str) for v in values):
            return None
        categories[str(name)] = values
    return numeric, categories


def _standardisation_of(
    numeric: dict[str, np.ndarray],
) -> tuple[tuple[str, ...], tuple[float, ...], tuple[float, ...]]:
    """The numeric features' names (sorted), means and standard deviations (1 for a constant one), from
    one array per feature; a value that is not finite is refused."""
    names = tuple(sorted(numeric))
    for name in names:
        if not np.all(np.isfinite(numeric[name])):
            bad = numeric[name][~np.isfinite(numeric[name])][0]
            raise SimulationInputError(f"contexts: feature {name!r} has unsupported value {bad!r}")
    return (names, tuple(float(np.mean(numeric[k])) for k in names),
            tuple(float(np.std(numeric[k])) or 1.0 for k in names))


def _standardisation(matrix: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    if matrix.shape[0] == 0:
        return tuple(0.0 for _ in range(matrix.shape[1])), tuple(1.0 for _ in range(matrix.shape[1]))
    sd = matrix.std(axis=0)
    return tuple(map(float, matrix.mean(axis=0))), tuple(float(s) if s > 0 else 1.0 for s in sd)


@dataclass(frozen=True)
class LinearRewardModel:
    """Per-variant generalised linear model :math:`\\hat q(x, a) = g(\\beta_a^\\top \\phi(x))`.

    Attributes
    ----------
    encoder : ContextEncoder
    coefficients : ndarray of shape (k, width)
    link : str
        ``"logistic"`` (:math:`g` the logistic function) or ``"identity"``.
    """

    encoder: ContextEncoder
    coefficients: np.ndarray
    link: Literal["logistic", "identity"]

    def predict(self, contexts: Contexts) -> np.ndarray:
        """Predicted expected rewards, shape ``(n, k)``."""
        eta = self.encoder.scores(contexts, self.coefficients)
        return logistic(eta, out=eta) if self.link == "logistic" else eta


def _rows_by_action(actions: np.ndarray, k: int) -> list[np.ndarray]:
    """The rows of each action ``0 .. k-1``, in log order (one stable sort, a radix sort for up to
    32,767 actions, instead of a pass over every row per action)."""
    order = np.argsort(actions.astype(np.int16) if k < 2**15 else actions, kind="stable")
    bounds = np.searchsorted(actions[order], np.arange(k + 1))
    return [order[bounds[a]:bounds[a + 1]] for a in range(k)]


# The fits' products over the rows (a few columns, tens of thousands of rows) are numpy's own loops
# (einsum), not BLAS: BLAS hands such thin products to its thread pool, which on few, busy cores cost
# about five times the arithmetic, and whose split of the work made the last digits of the
# coefficients depend on the number of threads.


def _fit_logistic(x: np.ndarray, y: np.ndarray, l2: float, iterations: int = 50) -> np.ndarray:
    """Newton's method for L2-penalised logistic regression (intercept unpenalised)."""
    x = np.asfortranarray(x)  # column by column: the products over the rows read contiguous columns
    beta = np.zeros(x.shape[1])
    mean = float(np.clip(y.mean(), 1e-6, 1 - 1e-6))
    beta[0] = math.log(mean / (1 - mean))
    penalty = np.full(x.shape[1], l2)
    penalty[0] = 0.0
    for _ in range(iterations):
        p = logistic(np.einsum("ij,j->i", x, beta))
        gradient = np.einsum("ij,i->j", x, y - p) - penalty * beta
        weighted = x * (p * (1 - p))[:, None]
        hessian = np.einsum("ij,ik->jk", weighted, x) + np.diag(penalty) + 1e-9 * np.eye(x.shape[1])
        step = np.linalg.solve(hessian, gradient)
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            break
    return beta


def _fit_ridge(x: np.ndarray, y: np.ndarray, l2: float) -> np.ndarray:
    x = np.asfortranarray(x)
    penalty = np.full(x.shape[1], l2)
    penalty[0] = 0.0
    gram = np.einsum("ij,ik->jk", x, x) + np.diag(penalty) + 1e-9 * np.eye(x.shape[1])
    return np.linalg.solve(gram, np.einsum("ij,i->j", x, y))


def fit_reward_model(
    data: LoggedData, *, kind: RewardModelKind = "auto", l2: float = 1.0, vw_passes: int = 1
) -> RewardModel:
    """Fit a reward model on logged sends.

    Parameters
    ----------
    data : LoggedData
        The training sends.
    kind : {"auto", "logistic", "linear", "vw"}
        ``auto`` chooses ``logistic`` when every reward is 0 or 1, else ``linear``.
    l2 : float
        Ridge penalty (not applied to the intercept).
    vw_passes : int
        Passes over the data for ``vw``.

    Returns
    -------
    RewardModel
        A variant with no logged row predicts the overall mean reward.
    """
    if kind not in ("auto", "logistic", "linear", "vw"):
        raise SimulationInputError(
            f"kind: unknown reward model {kind!r}; expected auto, logistic, linear or vw"
        )
    if l2 < 0:
        raise SimulationInputError(f"l2: must be non-negative, got {l2}")
    if data.n == 0:
        raise SimulationInputError("data: cannot fit a reward model on an empty log")
    rewards = np.asarray(data.rewards, dtype=float)
    binary = bool(np.all((rewards == 0) | (rewards == 1)))
    if kind == "auto":
        kind = "logistic" if binary else "linear"
    if kind == "logistic" and not binary:
        raise SimulationInputError("kind: logistic needs rewards that are all 0 or 1")
    if kind == "vw":
        from simulations.vw_reward_model import fit_vw_reward_model

        return fit_vw_reward_model(data, passes=vw_passes)
    encoder = ContextEncoder.fit(data.contexts)
    coefficients = np.zeros((data.n_actions, encoder.width))
    overall = float(rewards.mean())
    fit = _fit_logistic if kind == "logistic" else _fit_ridge
    for a, rows in enumerate(_rows_by_action(np.asarray(data.actions), data.n_actions)):
        if not rows.size:
            p = min(max(overall, 1e-6), 1 - 1e-6)
            coefficients[a, 0] = math.log(p / (1 - p)) if kind == "logistic" else overall
            continue
        coefficients[a] = fit(encoder.transform(data.take(rows).contexts), rewards[rows], l2)
    return LinearRewardModel(encoder, coefficients, "logistic" if kind == "logistic" else "identity")

