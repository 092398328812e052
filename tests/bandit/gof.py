"""Goodness of fit of ``choose`` against ``probabilities``, shared by the policy tests."""

from __future__ import annotations

import numpy as np
from scipy import stats

from bandit import Choices

STRICT_ALPHA = 1e-4


def assert_choices_match(probabilities: np.ndarray, choices: Choices) -> None:
    """Pearson chi-square of chosen-action counts against the summed row probabilities.

    With rows of different distributions the counts are Poisson-binomial, whose variance is below the
    multinomial's, so the test is conservative (it rejects less often than ``STRICT_ALPHA``).
    Also checks that each logged propensity is the probability of its action in its row.
    """
    n, k = probabilities.shape
    rows = np.arange(n)
    np.testing.assert_allclose(choices.propensities, probabilities[rows, choices.actions], rtol=1e-12)
    assert np.all(choices.propensities > 0)
    expected = probabilities.sum(axis=0)
    observed = np.bincount(choices.actions, minlength=k)
    assert np.all(observed[expected == 0] == 0), "an action with probability 0 was chosen"
    positive = expected > 0
    if positive.sum() < 2:
        return
    result = stats.chisquare(observed[positive], expected[positive])
    assert result.pvalue > STRICT_ALPHA, (observed, expected, result)
