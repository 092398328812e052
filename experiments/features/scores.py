"""A conversion-likelihood model: gradient boosting on past features, validated across recipients.

Time-based split: the features are computed as of ``T = as_of - h`` from events at or before ``T``;
the label of a recipient known at ``T`` is whether they bought in ``(T, as_of]``. Nothing after ``T``
enters a feature, so the model learns to predict the next ``h`` days from the past. The model
(scikit-learn's :class:`~sklearn.ensemble.HistGradientBoostingClassifier`, which takes missing
values, such as the recency of a recipient who never bought, as they are) is cross-validated in
``folds`` stratified folds of recipients: each recipient's out-of-fold prediction comes from a model
that did not see them, and the AUC, the log loss and the calibration table are computed on those.
Each feature's permutation importance is the drop of the held-out AUC when that feature's column is
shuffled (``n_repeats`` times per fold; Breiman 2001, Fisher et al. 2019), its mean and standard
deviation over folds and repeats. The final model is fitted on all training recipients and scores
every recipient on their features as of ``as_of``: ``p_convert`` is the probability of a purchase in
the ``h`` days that follow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from experiments.errors import InvalidInput
from experiments.features.calibration import CalibrationBin, calibration_table

#: Shuffles per feature and fold for the permutation importance.
IMPORTANCE_REPEATS = 5
#: Held-out rows per fold that the permutation importance scores (a seeded sample beyond it).
IMPORTANCE_ROWS = 20_000


@dataclass(frozen=True)
class FeatureImportance:
    """How much the held-out AUC drops when one feature is shuffled.

    Attributes
    ----------
    feature : str
    mean, sd : float
        Over folds and repeats.
    """

    feature: str
    mean: float
    sd: float


@dataclass(frozen=True)
class ModelReport:
    """How well the conversion model predicts, out of fold.

    Attributes
    ----------
    horizon_days : int
    split_at : pandas.Timestamp
        ``T``: features as of it, labels in ``(T, T + horizon]``.
    recipients : int
        Recipients known at ``T``.
    training_rows : int
        Those the model was trained and cross-validated on (a seeded sample of at most ``model_rows``).
    positives : int
        Of those, recipients who bought in ``(T, T + horizon]``.
    folds : int
    auc : float
        Of the pooled out-of-fold predictions.
    auc_by_fold : tuple of float
    log_loss : float
        Of the pooled out-of-fold predictions (natural log).
    base_log_loss : float
        Of predicting the training base rate for everyone: the log loss to beat.
    calibration : tuple of CalibrationBin
    importance : tuple of FeatureImportance
        Largest mean first.
    features : tuple of str
    """

    horizon_days: int
    split_at: pd.Timestamp
    recipients: int
    training_rows: int
    positives: int
    folds: int
    auc: float
    auc_by_fold: tuple[float, ...]
    log_loss: float
    base_log_loss: float
    calibration: tuple[CalibrationBin, ...]
    importance: tuple[FeatureImportance, ...]
    features: tuple[str, ...]


@dataclass(frozen=True)
class ConversionScores:
    """The model's report and its scores.

    Attributes
    ----------
    report : ModelReport
    p_convert : ndarray of float, shape (m,)
        For each recipient to score, the probability of a purchase within the horizon.
    """

    report: ModelReport
    p_convert: np.ndarray


def _classifier(seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(random_state=seed)


def fit_conversion_scores(
    train_features: pd.DataFrame,
    labels: np.ndarray,
    score_features: pd.DataFrame,
    *,
    horizon_days: int,
    split_at: pd.Timestamp,
    folds: int,
    seed: int,
    model_rows: int,
) -> ConversionScores:
    """Train, cross-validate and explain the conversion model, then score (module docstring).

    Parameters
    ----------
    train_features : pandas.DataFrame, shape (n, d)
        Features as of ``split_at`` of the recipients known then (NaN allowed).
    labels : ndarray of bool, shape (n,)
        Whether each bought in ``(split_at, split_at + horizon]``.
    score_features : pandas.DataFrame, shape (m, d)
        The same columns, as of ``as_of``, for the recipients to score.
    horizon_days : int
    split_at : pandas.Timestamp
    folds : int
    seed : int
    model_rows : int
        At most this many training recipients (a seeded sample).

    Returns
    -------
    ConversionScores

    Raises
    ------
    InvalidInput
        (field ``horizon_days``) When fewer than ``folds`` recipients bought in the label window, or
        fewer than ``folds`` did not.
    """
    from sklearn.inspection import permutation_importance
    from sklearn.metrics import log_loss, roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    labels = np.asarray(labels, dtype=bool)
    rng = np.random.default_rng(seed)
    recipients = len(labels)
    if recipients > model_rows:
        keep = np.sort(rng.choice(recipients, size=model_rows, replace=False))
        train_features, labels = train_features.iloc[keep].reset_index(drop=True), labels[keep]
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if min(positives, negatives) < folds:
        raise InvalidInput(
            "horizon_days",
            f"of the {len(labels)} recipients known at {split_at.isoformat()}, {positives} bought in the "
            f"{horizon_days} days after it and {negatives} did not; {folds}-fold cross-validation needs at "
            f"least {folds} of each (a longer history, a longer horizon, or fewer folds)",
        )
    x = train_features.to_numpy(dtype=float)
    y = labels.astype(int)
    predicted = np.empty(len(y))
    fold_aucs = []
    drops: list[np.ndarray] = []
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, held in splitter.split(x, y):
        model = _classifier(seed).fit(x[train], y[train])
        predicted[held] = model.predict_proba(x[held])[:, 1]
        fold_aucs.append(float(roc_auc_score(y[held], predicted[held])))
        shares = min(1.0, IMPORTANCE_ROWS / len(held))
        result = permutation_importance(model, x[held], y[held], scoring="roc_auc",
                                        n_repeats=IMPORTANCE_REPEATS, random_state=seed, max_samples=shares)
        drops.append(result.importances)
    every = np.concatenate(drops, axis=1)
    importance = sorted(
        (FeatureImportance(str(name), float(every[i].mean()), float(every[i].std(ddof=1)))
         for i, name in enumerate(train_features.columns)),
        key=lambda f: -f.mean,
    )
    base_rate = y.mean()
    final = _classifier(seed).fit(x, y)
    report = ModelReport(
        horizon_days=horizon_days,
        split_at=split_at,
        recipients=recipients,
        training_rows=len(y),
        positives=positives,
        folds=folds,
        auc=float(roc_auc_score(y, predicted)),
        auc_by_fold=tuple(fold_aucs),
        log_loss=float(log_loss(y, predicted)),
        base_log_loss=float(log_loss(y, np.full(len(y), base_rate))),
        calibration=calibration_table(y, predicted),
        importance=tuple(importance),
        features=tuple(str(c) for c in train_features.columns),
    )
    p_convert = final.predict_proba(score_features.to_numpy(dtype=float))[:, 1]
    return ConversionScores(report, p_convert)
