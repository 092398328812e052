"""The conversion model: cross-validated AUC with and without a signal, its explanation and calibration."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import roc_auc_score

from experiments.errors import InvalidInput
from experiments.features import FeatureSettings, compute_features, events_from_frame
from experiments.features.calibration import calibration_table
from tests.experiments.features.synthetic_history import (
    AS_OF,
    HORIZON,
    SPLIT,
    history_with_signal,
    history_without_signal,
)

N = 1500
FOLDS = 4


def settings(seed: int = 0) -> FeatureSettings:
    return FeatureSettings(as_of=AS_OF, k=3, horizon_days=HORIZON, folds=FOLDS, seed=seed)


def test_with_a_known_signal_the_cross_validated_auc_is_near_the_best_possible() -> None:
    events, rate = history_with_signal(N, seed=0)
    result = compute_features([events_from_frame(events)], settings())
    report = result.scores.report
    # The best any model can do ranks recipients by their true rate: that AUC, on the same labels.
    known = events.loc[events["timestamp"] <= SPLIT, "recipient_id"].unique()
    bought = events.loc[(events["type"] == "purchase") & (events["timestamp"] > SPLIT), "recipient_id"]
    labels = np.isin(known, bought.unique())
    best = roc_auc_score(labels, rate[[int(r[1:]) for r in known]])
    assert (report.recipients, report.positives) == (len(known), labels.sum())
    # The model only sees a noisy past (a few purchases per recipient), so it stays below the best; at
    # this size it lands about 0.04 below (0.86 against 0.90 over three seeds tried).
    assert report.auc > 0.80 and report.auc > best - 0.08
    assert len(report.auc_by_fold) == FOLDS and min(report.auc_by_fold) > 0.75
    assert report.log_loss < report.base_log_loss - 0.05
    # Explanation: bounces are drawn independently of everything; purchases and opens carry the signal.
    importance = {f.feature: f.mean for f in report.importance}
    assert report.importance[0].feature in {"frequency", "monetary", "open_90d", "purchase_90d"}
    assert report.importance[0].mean > 0.03
    assert abs(importance["bounce_30d"]) < 0.01 and abs(importance["bounce_90d"]) < 0.01
    # Every recipient known at as_of is scored.
    p = result.scores.p_convert
    assert len(p) == len(result) and np.all((p > 0) & (p < 1))


def test_without_a_signal_the_cross_validated_auc_stays_near_one_half() -> None:
    result = compute_features([events_from_frame(history_without_signal(N, seed=0))], settings())
    report = result.scores.report
    positives, negatives = report.positives, report.training_rows - report.positives
    # Under no signal the AUC's standard error is sqrt((n1 + n0 + 1) / (12 n1 n0)) (Hanley & McNeil
    # 1982): about 0.016 here. The band of 0.07 is over 4 standard errors; out-of-fold AUCs under the
    # null also lean slightly below 0.5, which the band allows for.
    se = np.sqrt((positives + negatives + 1) / (12 * positives * negatives))
    assert 0.014 < se < 0.018
    assert abs(report.auc - 0.5) < 0.07
    # No model beats the base rate out of fold when there is nothing to learn.
    assert report.log_loss > report.base_log_loss - 0.005


def test_the_calibration_table_is_scikit_learns_quantile_calibration_curve() -> None:
    rng = np.random.default_rng(5)
    predicted = rng.beta(2, 5, 3000)
    labels = rng.random(3000) < predicted
    table = calibration_table(labels, predicted)
    observed, mean_predicted = calibration_curve(labels, predicted, n_bins=10, strategy="quantile")
    np.testing.assert_allclose([b.observed_rate for b in table], observed, atol=1e-12)
    np.testing.assert_allclose([b.mean_predicted for b in table], mean_predicted, atol=1e-12)
    assert sum(b.count for b in table) == 3000 and [b.count for b in table] == [300] * 10


def test_too_few_buyers_for_the_folds_is_refused_with_the_reason() -> None:
    events, _ = history_with_signal(40, seed=1)
    late = events["timestamp"] > SPLIT
    keep = ~late | (events["type"] != "purchase") | (events["recipient_id"].isin(["r1", "r2"]))
    message = r"bought in the 60 days after it .* needs at least 4 of each"
    with pytest.raises(InvalidInput, match=message) as info:
        compute_features([events_from_frame(events[keep])], settings())
    assert info.value.field == "horizon_days"
