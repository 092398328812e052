"""SendLab's policies: fixed allocation, bandits and contextual bandits behind one interface."""

from bandit.fixed import FixedAllocation, factorial_weights
from bandit.policy import Choices, Context, Contexts, FeatureValue, Policy, PolicyError
from bandit.registry import load_policy, make_policy
from bandit.thompson import BetaThompson, GaussianThompson

__all__ = [
    "BetaThompson",
    "Choices",
    "Context",
    "Contexts",
    "FeatureValue",
    "FixedAllocation",
    "GaussianThompson",
    "Policy",
    "PolicyError",
    "factorial_weights",
    "load_policy",
    "make_policy",
]
