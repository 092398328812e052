"""Vowpal Wabbit's text format for ``--cb_explore_adf`` examples, with safe escaping.

A multi-line example is one ``shared |User ...`` line of recipient features followed by one
``|Action ...`` line per candidate action. In VW's text format a space separates features, ``|``
starts a namespace and ``:`` separates a feature from its value, so these characters (and ``%``, the
escape character itself, ``=``, which separates name and value, and line breaks) are percent-encoded
in names and string values. The encoding is injective: distinct values stay distinct features.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

import numpy as np

from bandit.policy import FeatureValue

SHARED_NAMESPACE = "User"
ACTION_NAMESPACE = "Action"
ACTION_ID_FEATURE = "_action"

_ESCAPES = str.maketrans({
    "%": "%25", " ": "%20", "\t": "%09", "\n": "%0A", "\r": "%0D", "|": "%7C", ":": "%3A", "=": "%3D",
})


def escape(text: str) -> str:
    """Percent-encode the characters that VW's text format treats as syntax.

    Examples
    --------
    >>> escape("50% off | today: 9am")
    '50%25%20off%20%7C%20today%3A%209am'
    """
    return text.translate(_ESCAPES)


@lru_cache(maxsize=65_536)
def _categorical(name: str, value: str) -> str:
    return f"{escape(name)}={escape(value)}"


def feature_token(name: str, value: FeatureValue) -> str:
    """One VW feature: ``name:value`` for numbers, ``name=value`` (weight 1) for strings and bools."""
    if isinstance(value, bool | np.bool_):
        return _categorical(name, "true" if value else "false")
    if isinstance(value, str):
        return _categorical(name, value)
    return f"{escape(name)}:{float(value):.17g}"


def features_text(features: Mapping[str, FeatureValue]) -> str:
    """The features of one namespace, space separated; ``None`` values (missing) are left out."""
    return " ".join(feature_token(name, value) for name, value in features.items() if value is not None)


def shared_line(features: Mapping[str, FeatureValue]) -> str:
    """The ``shared`` line of one recipient."""
    return f"shared |{SHARED_NAMESPACE} {features_text(features)}"


def action_line(index: int, features: Mapping[str, FeatureValue]) -> str:
    """The line of one action: its features plus an id feature, so identical features stay distinct."""
    return f"|{ACTION_NAMESPACE} {ACTION_ID_FEATURE}={index} {features_text(features)}".rstrip()


def labelled(line: str, cost: float, probability: float) -> str:
    """An action line carrying VW's contextual-bandit label ``0:cost:probability``."""
    return f"0:{cost:.17g}:{probability:.17g} {line}"
