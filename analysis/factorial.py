"""Multivariate (factorial) designs: main effects and interactions by logistic regression on counts.

Each cell of the design (one level of every factor, say subject ``urgent`` x CTA ``see``) is summarised
as units and successes; a binomial GLM with a logit link on those counts (the model of the formula
``successes + failures ~ C(f0) * C(f1)``, treatment-coded, its design matrix built here and fitted by
statsmodels on arrays) gives the same estimates as a logistic regression on the individual sends,
without loading them.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import statsmodels.api as sm
from scipy import special
from statsmodels.tools.sm_exceptions import PerfectSeparationWarning

from analysis.errors import AnalysisInputError
from analysis.json_ready import to_jsonable
from analysis.lift import check_alpha


@dataclass(frozen=True)
class FactorialCell:
    """One combination of factor levels and its counts, e.g. ``{"subject": "urgent", "cta": "see"}``."""

    levels: Mapping[str, str]
    n: int
    successes: int


@dataclass(frozen=True)
class EffectRow:
    """One term of the model, on the log-odds scale (``odds_ratio = exp(estimate)``).

    ``term`` reads ``subject=urgent`` for a main effect (against the reference level) and
    ``subject=urgent x cta=see`` for an interaction; ``intercept`` is the all-reference cell.
    ``significant`` is ``p_value < alpha`` for every row; the intercept's test (log odds 0, a 50% rate in
    the all-reference cell) is no effect of the experiment, so the table says it does not "matter" ("-")
    and the note does not count it among the terms tested.
    """

    term: str
    kind: str
    estimate: float
    std_error: float
    z: float
    p_value: float
    ci: tuple[float, float]
    odds_ratio: float
    significant: bool


@dataclass(frozen=True)
class FactorialAnalysis:
    """The fitted model as a table; :meth:`to_markdown` prints which effects matter."""

    metric: str
    factors: list[str]
    reference: dict[str, str]
    formula: str
    alpha: float
    rows: list[EffectRow]
    interaction_p_value: float | None
    note: str

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(self)

    def to_markdown(self) -> str:
        """A markdown table: term, odds ratio with interval, p-value, and whether it matters."""
        lines = [
            f"Logistic regression of {self.metric} (reference: "
            + ", ".join(f"{k}={v}" for k, v in self.reference.items()) + ")",
            "",
            "| term | kind | odds ratio | 95% interval | p-value | matters |".replace(
                "95%", f"{1 - self.alpha:.0%}"),
            "|---|---|---|---|---|---|",
        ]
        for r in self.rows:
            low, high = format_odds_ratio(r.ci[0]), format_odds_ratio(r.ci[1])
            lines.append(f"| {r.term} | {r.kind} | {format_odds_ratio(r.estimate)} | {low} - {high} | "
                         f"{r.p_value:.3g} | {_matters(r)} |")
        return "\n".join(lines + ["", self.note])


def format_odds_ratio(log_odds: float) -> str:
    """An odds ratio from its log (a model's estimate or interval end), three decimals; beyond a million
    (a combination with almost no events) it reads as such rather than overflowing.

    Examples
    --------
    >>> format_odds_ratio(math.log(1.5)), format_odds_ratio(800.0), format_odds_ratio(math.nan)
    ('1.500', '> 1,000,000', 'n/a')
    """
    if math.isnan(log_odds):
        return "n/a"
    if log_odds > math.log(1e6):
        return "> 1,000,000"
    return f"{math.exp(log_odds):,.3f}"


def analyze_factorial(
    cells: Sequence[FactorialCell],
    *,
    metric: str = "click",
    reference: Mapping[str, str] | None = None,
    interactions: bool = True,
    alpha: float = 0.05,
) -> FactorialAnalysis:
    """Fit ``successes + failures ~ C(f0) * C(f1) * ...`` (or ``+`` without interactions).

    Parameters
    ----------
    cells : Sequence[FactorialCell]
        One per observed combination of levels; every cell names the same factors.
    metric : str
        The event counted as success (for the table's title).
    reference : Mapping[str, str] or None
        Reference level per factor (the control); by default the first level seen.
    interactions : bool
        Include all interactions (the saturated model for a full factorial) or main effects only.
    alpha : float
        For the Wald intervals and for ``significant``. No multiplicity correction is applied across
        terms; the note says how many were tested.

    Returns
    -------
    FactorialAnalysis
        ``interaction_p_value`` is the likelihood-ratio test of all interactions at once (None
        without interactions).
    """
    check_alpha(alpha)
    if len(cells) < 2:
        raise AnalysisInputError(f"cells: need at least 2 cells, got {len(cells)}")
    factors = list(cells[0].levels)
    if not factors:
        raise AnalysisInputError("cells[0].levels: name at least one factor")
    level_lists: dict[str, list[str]] = {f: [] for f in factors}
    for i, cell in enumerate(cells):
        if list(cell.levels) != factors:
            raise AnalysisInputError(f"cells[{i}].levels: factors {list(cell.levels)} differ from {factors}")
        if cell.n <= 0 or not 0 <= cell.successes <= cell.n:
            raise AnalysisInputError(f"cells[{i}]: need n > 0 and 0 <= successes <= n, got "
                                     f"n={cell.n}, successes={cell.successes}")
        for f in factors:
            if cell.levels[f] not in level_lists[f]:
                level_lists[f].append(cell.levels[f])
    ref = {f: (reference or {}).get(f, level_lists[f][0]) for f in factors}
    for f in factors:
        if ref[f] not in level_lists[f]:
            raise AnalysisInputError(f"reference[{f!r}]: {ref[f]!r} is not a level of {f} ({level_lists[f]})")
        if len(level_lists[f]) < 2:
            raise AnalysisInputError(f"cells: factor {f!r} has a single level {level_lists[f]}")
        level_lists[f] = [ref[f]] + [v for v in level_lists[f] if v != ref[f]]

    # The formula names the model (internal names f0, f1, ... and levels L0 = reference, L1, ...); the
    # design matrix is built here, in the formula's column order, and fitted on arrays.
    terms = [f"C(f{k}, Treatment('L0'))" for k in range(len(factors))]
    rhs = (" * " if interactions else " + ").join(terms)
    formula = f"successes + failures ~ {rhs}"
    cell_levels = np.array([[level_lists[f].index(c.levels[f]) for f in factors] for c in cells])
    counts = np.array([[c.successes, c.n - c.successes] for c in cells], dtype=float)
    columns = _columns([len(level_lists[f]) for f in factors], len(factors) if interactions else 1)
    fit = _fit(counts, _design(cell_levels, columns))

    z_crit = float(-special.ndtri(alpha / 2))
    rows = []
    for column, est, se, p in zip(columns, fit.params, fit.bse, fit.pvalues, strict=True):
        label, kind = _label(column, factors, level_lists)
        est, se, p = float(est), float(se), float(p)
        rows.append(EffectRow(label, kind, est, se, est / se, p, (est - z_crit * se, est + z_crit * se),
                              math.exp(min(est, 709.0)), bool(p < alpha)))

    interaction_p = None
    if interactions and len(factors) > 1:
        main = [c for c in columns if len(c) <= 1]
        additive = _fit(counts, _design(cell_levels, main))
        lr = 2 * (fit.llf - additive.llf)
        df = fit.df_model - additive.df_model
        interaction_p = float(special.chdtrc(df, max(lr, 0.0))) if df > 0 else None
    tested = sum(r.kind != "intercept" for r in rows)
    note = (f"{tested} terms tested without a multiplicity correction: at alpha {alpha:g} about "
            f"{tested * alpha:.1f} would look significant by chance alone if nothing mattered.")
    if interaction_p is not None:
        note += (f" Likelihood-ratio test of all interactions together: p = {interaction_p:.3g}"
                 + (" (main effects alone do not describe the data)." if interaction_p < alpha else "."))
    degenerate = [i for i, c in enumerate(cells) if c.successes in (0, c.n)]
    if degenerate:
        note += (f" Cells {degenerate} have no successes or no failures: the terms touching them have "
                 "infinite log odds and their estimates and p-values are not meaningful.")
    return FactorialAnalysis(metric, factors, ref, formula, alpha, rows, interaction_p, note)


def _matters(row: EffectRow) -> str:
    return "-" if row.kind == "intercept" else ("yes" if row.significant else "no")


#: A column of the design: the (factor index, level index) pairs whose indicators it multiplies (the
#: empty tuple is the intercept; level 0 is the reference, coded by no column).
Column = tuple[tuple[int, int], ...]


def _columns(levels_per_factor: Sequence[int], degree: int) -> list[Column]:
    """The treatment-coded columns of every term up to ``degree`` factors, in the order of the formula
    ``C(f0) * C(f1) * ...``: the intercept, then terms by degree, each degree's in the order of its
    factors' combinations, and within a term the first factor's levels varying fastest."""
    columns: list[Column] = [()]
    for size in range(1, degree + 1):
        for term in itertools.combinations(range(len(levels_per_factor)), size):
            levels = itertools.product(*[range(1, levels_per_factor[k]) for k in reversed(term)])
            columns += [tuple(zip(term, reversed(combo), strict=True)) for combo in levels]
    return columns


def _design(cell_levels: np.ndarray, columns: Sequence[Column]) -> np.ndarray:
    """The design matrix, shape ``(cells, len(columns))``: 1 where the cell (its level index per factor,
    ``cell_levels`` of shape ``(cells, factors)``) has every level the column names."""
    design = np.ones((len(cell_levels), len(columns)))
    for j, column in enumerate(columns):
        for k, level in column:
            design[:, j] *= cell_levels[:, k] == level
    return design


def _fit(counts: np.ndarray, design: np.ndarray) -> Any:
    """The binomial GLM (logit link) of ``counts`` (shape ``(cells, 2)``: successes, failures)."""
    # A saturated model fits the cells exactly: statsmodels then warns about a zero residual degree of
    # freedom and "perfect prediction", which are expected here (real separation is reported in the note).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", PerfectSeparationWarning)
        return sm.GLM(counts, design, family=sm.families.Binomial()).fit()


def _label(column: Column, factors: list[str], level_lists: dict[str, list[str]]) -> tuple[str, str]:
    if not column:
        return "intercept", "intercept"
    parts = [f"{factors[k]}={level_lists[factors[k]][j]}" for k, j in column]
    return " x ".join(parts), "main effect" if len(parts) == 1 else "interaction"
