"""Factorial effects against closed-form log odds ratios and a logistic regression on raw rows."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats as sps

from analysis.errors import AnalysisInputError
from analysis.factorial import FactorialCell, analyze_factorial

COUNTS = {("plain", "shop"): (5000, 400), ("urgent", "shop"): (5000, 470),
          ("plain", "see"): (5000, 380), ("urgent", "see"): (5000, 520)}
CELLS = [FactorialCell({"subject": s, "cta": c}, n, x) for (s, c), (n, x) in COUNTS.items()]


def _logit(x: int, n: int) -> float:
    return math.log(x / (n - x))


def test_saturated_2x2_matches_closed_form_log_odds() -> None:
    r = analyze_factorial(CELLS, metric="click")
    rows = {row.term: row for row in r.rows}
    lg = {k: _logit(x, n) for k, (n, x) in COUNTS.items()}
    inv = {k: 1 / x + 1 / (n - x) for k, (n, x) in COUNTS.items()}  # Var(logit) = 1/x + 1/(n-x)
    pp, up, ps, us = ("plain", "shop"), ("urgent", "shop"), ("plain", "see"), ("urgent", "see")
    assert rows["intercept"].estimate == pytest.approx(lg[pp], abs=1e-7)
    assert rows["subject=urgent"].estimate == pytest.approx(lg[up] - lg[pp], abs=1e-7)
    assert rows["subject=urgent"].std_error == pytest.approx(math.sqrt(inv[up] + inv[pp]), abs=1e-7)
    assert rows["cta=see"].estimate == pytest.approx(lg[ps] - lg[pp], abs=1e-7)
    inter = rows["subject=urgent x cta=see"]
    assert inter.estimate == pytest.approx(lg[us] - lg[up] - lg[ps] + lg[pp], abs=1e-7)
    assert inter.std_error == pytest.approx(math.sqrt(sum(inv.values())), abs=1e-7)
    assert inter.kind == "interaction" and r.interaction_p_value is not None


def test_additive_model_matches_logit_on_raw_rows() -> None:
    rows = []
    for (s, c), (n, x) in COUNTS.items():
        rows += [(s, c, 1)] * x + [(s, c, 0)] * (n - x)
    raw = pd.DataFrame(rows, columns=["subject", "cta", "y"])
    ref = smf.logit("y ~ C(subject, Treatment('plain')) + C(cta, Treatment('shop'))", raw).fit(disp=0)
    r = analyze_factorial(CELLS, interactions=False)
    got = {row.term: row for row in r.rows}
    assert got["subject=urgent"].estimate == pytest.approx(
        ref.params["C(subject, Treatment('plain'))[T.urgent]"], abs=1e-6)
    assert got["cta=see"].p_value == pytest.approx(ref.pvalues["C(cta, Treatment('shop'))[T.see]"], abs=1e-6)
    assert r.interaction_p_value is None


def _raw_rows(counts: dict[tuple[str, str], tuple[int, int]]) -> pd.DataFrame:
    rows = []
    for (s, c), (n, x) in counts.items():
        rows += [(s, c, 1)] * x + [(s, c, 0)] * (n - x)
    return pd.DataFrame(rows, columns=["subject", "cta", "y"])


THREE_BY_TWO = {("plain", "shop"): (3000, 240), ("urgent", "shop"): (3000, 282),
                ("personal", "shop"): (3000, 300), ("plain", "see"): (3000, 228),
                ("urgent", "see"): (3000, 312), ("personal", "see"): (3000, 255)}


@pytest.mark.parametrize("counts", [COUNTS, THREE_BY_TWO], ids=["2x2", "3x2"])
def test_interaction_likelihood_ratio_p_value_matches_statsmodels_logit_on_raw_rows(counts) -> None:
    # Reference: the full and the main-effects logistic regressions fitted by statsmodels' smf.logit on
    # one row per send; LR = 2 (llf_full - llf_reduced) on df_full - df_reduced degrees of freedom,
    # p = scipy.stats.chi2.sf. (The binomial GLM on cell counts has a different log-likelihood constant,
    # which cancels in the difference.)
    raw = _raw_rows(counts)
    terms = "C(subject, Treatment('plain')) {op} C(cta, Treatment('shop'))"
    full = smf.logit("y ~ " + terms.format(op="*"), raw).fit(disp=0, tol=1e-12, maxiter=200)
    reduced = smf.logit("y ~ " + terms.format(op="+"), raw).fit(disp=0, tol=1e-12, maxiter=200)
    lr = 2 * (full.llf - reduced.llf)
    df = full.df_model - reduced.df_model
    assert df == (len({s for s, _ in counts}) - 1)
    cells = [FactorialCell({"subject": s, "cta": c}, n, x) for (s, c), (n, x) in counts.items()]
    r = analyze_factorial(cells, reference={"subject": "plain", "cta": "shop"})
    assert r.interaction_p_value == pytest.approx(sps.chi2.sf(lr, df), abs=1e-6)
    assert f"p = {r.interaction_p_value:.3g}" in r.note


def test_reference_levels_and_table() -> None:
    r = analyze_factorial(CELLS, reference={"subject": "urgent"})
    assert r.reference == {"subject": "urgent", "cta": "shop"}
    assert "subject=plain" in {row.term for row in r.rows}
    table = r.to_markdown()
    assert "| subject=plain x cta=see | interaction |" in table and "multiplicity" in table
    assert r.to_dict()["rows"][0]["term"] == "intercept"


def test_a_pure_interaction_is_found() -> None:
    rng = np.random.default_rng(6)
    p = {("a", "x"): 0.10, ("b", "x"): 0.10, ("a", "y"): 0.10, ("b", "y"): 0.16}
    cells = [FactorialCell({"s": s, "c": c}, 20_000, int(rng.binomial(20_000, q))) for (s, c), q in p.items()]
    r = analyze_factorial(cells)
    assert {row.term: row.significant for row in r.rows}["s=b x c=y"]
    assert r.interaction_p_value < 0.001


@pytest.mark.parametrize(
    ("cells", "kw", "message"),
    [
        (CELLS[:1], {}, "cells: need at least 2"),
        ([CELLS[0], FactorialCell({"subject": "x"}, 10, 1)], {}, r"cells\[1\].levels"),
        ([CELLS[0], FactorialCell({"subject": "u", "cta": "s"}, 10, 11)], {}, r"cells\[1\]"),
        (CELLS, {"reference": {"cta": "nope"}}, r"reference\['cta'\]"),
    ],
)
def test_bad_inputs(cells, kw, message: str) -> None:
    with pytest.raises(AnalysisInputError, match=message):
        analyze_factorial(cells, **kw)


def test_the_intercept_is_flagged_as_its_p_value_says_and_not_counted_as_an_effect() -> None:
    # an 8% rate in the reference cell: log odds -2.44, z = -46.9 (p below the smallest double, 0)
    r = analyze_factorial(CELLS, metric="click")
    intercept = r.rows[0]
    assert intercept.term == "intercept"
    z = _logit(400, 5000) / math.sqrt(1 / 400 + 1 / 4600)
    assert intercept.p_value == pytest.approx(2 * sps.norm.sf(abs(z)), rel=1e-6)
    assert intercept.p_value < 1e-30 and intercept.significant is True
    assert r.to_dict()["rows"][0]["significant"] is True
    assert "| intercept | intercept |" in r.to_markdown() and r.to_markdown().count(" | - |") == 1
    assert r.note.startswith("3 terms tested")


@pytest.mark.filterwarnings("ignore::RuntimeWarning",
                            "ignore::statsmodels.tools.sm_exceptions.PerfectSeparationWarning")
@pytest.mark.parametrize("interactions", [True, False])
def test_three_factors_match_the_statsmodels_formula_glm_term_by_term(interactions: bool) -> None:
    # reference: statsmodels' binomial GLM from the formula (patsy's treatment coding and column order)
    import statsmodels.api as sm

    rng = np.random.default_rng(7)
    levels = {"subject": ["plain", "urgent", "personal"], "cta": ["shop", "see"], "img": ["a", "b", "c"]}
    cells, frame_rows = [], []
    for s in levels["subject"]:
        for c in levels["cta"]:
            for i in levels["img"]:
                n = int(rng.integers(2000, 9000))
                x = int(rng.binomial(n, 0.04 + 0.01 * levels["img"].index(i) + 0.005 * len(s)))
                cells.append(FactorialCell({"subject": s, "cta": c, "img": i}, n, x))
                frame_rows.append((s, c, i, x, n - x))
    frame = pd.DataFrame(frame_rows, columns=["subject", "cta", "img", "successes", "failures"])
    terms = [f"C({f}, Treatment('{v[0]}'))" for f, v in levels.items()]
    rhs = (" * " if interactions else " + ").join(terms)
    ref = smf.glm(f"successes + failures ~ {rhs}", frame, family=sm.families.Binomial()).fit()
    r = analyze_factorial(cells, interactions=interactions)
    # patsy orders a factor's levels alphabetically, analyze_factorial as first seen: match by term
    term_to_name = {"intercept" if name == "Intercept" else " x ".join(
        f"{p[2:p.index(',')]}={p[p.rindex('[T.') + 3:-1]}" for p in name.split(":")): name
        for name in ref.params.index}
    assert sorted(row.term for row in r.rows) == sorted(term_to_name)
    assert len(r.rows) == (18 if interactions else 6)
    for row in r.rows:
        name = term_to_name[row.term]
        assert row.kind == ("intercept" if name == "Intercept" else
                            "interaction" if ":" in name else "main effect")
        assert row.estimate == pytest.approx(ref.params[name], rel=1e-9, abs=1e-12)
        assert row.std_error == pytest.approx(ref.bse[name], rel=1e-9)
        assert row.p_value == pytest.approx(ref.pvalues[name], rel=1e-7, abs=1e-15)
    if interactions:
        additive = smf.glm(f"successes + failures ~ {' + '.join(terms)}", frame,
                           family=sm.families.Binomial()).fit()
        lr = 2 * (ref.llf - additive.llf)
        expected_p = sps.chi2.sf(lr, ref.df_model - additive.df_model)
        assert r.interaction_p_value == pytest.approx(expected_p, rel=1e-6)
    else:
        assert r.interaction_p_value is None


def test_the_table_of_a_combination_without_events_reads_without_overflowing() -> None:
    # separation: one cell without events puts the log odds of its terms near +-22,000, whose exp
    # overflowed in the markdown table (sendlab analyze's text output)
    cells = [FactorialCell({"s": "a", "c": "x"}, 1000, 0), FactorialCell({"s": "b", "c": "x"}, 1000, 3),
             FactorialCell({"s": "a", "c": "y"}, 1000, 2), FactorialCell({"s": "b", "c": "y"}, 1000, 500)]
    r = analyze_factorial(cells)
    assert max(row.ci[1] for row in r.rows) > 710  # beyond what math.exp takes
    table = r.to_markdown()
    assert "| s=b | main effect | > 1,000,000 | 0.000 - > 1,000,000 |" in table
