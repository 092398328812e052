"""SendLab's policies: fixed allocation, bandits and contextual bandits behind one interface.

Build one by name with :func:`make_policy`, restore a snapshot with :func:`load_policy`.
"""

from bandit.features import FeatureHasher
from bandit.fixed import FixedAllocation, factorial_weights
from bandit.greedy import EpsilonGreedy
from bandit.linear import LinearThompson, LinUCB
from bandit.policy import Choices, Context, Contexts, FeatureValue, Policy, PolicyError, RevisionUnsupported
from bandit.registry import load_policy, make_policy, name_to_builder, option_problems
from bandit.thompson import BetaThompson, GaussianThompson
from bandit.ucb import UCB1
from bandit.vw import VWContextualBandit

POLICY_NAMES: tuple[str, ...] = tuple(name_to_builder)

__all__ = [
    "POLICY_NAMES",
    "UCB1",
    "BetaThompson",
    "Choices",
    "Context",
    "Contexts",
    "EpsilonGreedy",
    "FeatureHasher",
    "FeatureValue",
    "FixedAllocation",
    "GaussianThompson",
    "LinUCB",
    "LinearThompson",
    "Policy",
    "PolicyError",
    "RevisionUnsupported",
    "VWContextualBandit",
    "factorial_weights",
    "load_policy",
    "make_policy",
    "option_problems",
]
