"""How a spec reads a recipient's consent, and what a recipient without consent gets. Pure, no I/O.

A spec declares ``consent: {attribute: consent, missing: deny, without_consent: defaults}`` (those are
the defaults). A recipient consents when the attribute holds a value that does not decline (``true``,
``"yes"``, ``1``, ...); a value that declines (``false``, ``0``, ``"no"``, ...) is no consent, and so is a
missing or ``null`` value unless ``missing: allow``. ``attribute: null`` declares that the spec reads no
consent attribute: every recipient is taken as consenting (consent is checked before the send).

Nothing of a recipient without consent is stored or used: their decision is logged without context,
and neither eligibility, rules nor a contextual policy read their attributes. ``without_consent:
defaults`` gives them the default variants (reason ``no_consent``); ``without_consent: randomize`` gives
them a non-personalised arm of a hash or bandit design (the sticky hash of their id, or the bandit's
draw), still subject to the holdout.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from experiments.errors import Problem
from experiments.limits import MAX_ATTRIBUTE_LENGTH

if TYPE_CHECKING:
    from experiments.spec import ExperimentSpec

_FALSE_WORDS = frozenset({"false", "no", "n", "0", "off"})
#: The design types that can give a recipient without consent an arm without reading their context.
RANDOMIZABLE_DESIGNS = ("ab", "multivariate", "bandit")


class Consent(BaseModel):
    """How a spec reads consent: which context attribute, what a missing value means, and what a
    recipient without consent gets (the defaults, or a non-personalised arm)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    attribute: str | None = Field(default="consent", min_length=1, max_length=MAX_ATTRIBUTE_LENGTH)
    missing: Literal["deny", "allow"] = "deny"
    without_consent: Literal["defaults", "randomize"] = "defaults"


def declines_consent(value: Any) -> bool:
    """Whether a consent attribute's value says no (false, 0, "no", "false", ...).

    Examples
    --------
    >>> [declines_consent(v) for v in (False, 0, " No ", True, "yes", 1)]
    [True, True, True, False, False, False]
    """
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value == 0
    if isinstance(value, str):
        return value.strip().lower() in _FALSE_WORDS
    return False


def consents(consent: Consent, context: Mapping[str, Any]) -> bool:
    """Whether the recipient with ``context`` consents, as ``consent`` reads it.

    Examples
    --------
    >>> [consents(Consent(), c) for c in ({"consent": True}, {}, {"consent": None})]
    [True, False, False]
    >>> consents(Consent(missing="allow"), {}), consents(Consent(missing="allow"), {"consent": "no"})
    (True, False)
    """
    if consent.attribute is None:
        return True
    value = context.get(consent.attribute)
    if value is None:
        return consent.missing == "allow"
    return not declines_consent(value)


def consent_flags(consent: Consent, contexts: Sequence[Mapping[str, Any]]) -> list[bool]:
    """:func:`consents` per recipient (all True at once when the spec reads no consent attribute)."""
    if consent.attribute is None:
        return [True] * len(contexts)
    return [consents(consent, context) for context in contexts]


def withhold_contexts(
    contexts: Sequence[Mapping[str, Any]], consented: Sequence[bool]
) -> list[Mapping[str, Any]]:
    """The contexts a design may read: a recipient's own when they consent, else an empty one."""
    if len(contexts) == len(consented) and all(consented):
        return list(contexts)
    return [context if ok else {} for context, ok in zip(contexts, consented, strict=True)]


def consent_line(consent: Consent, context: Mapping[str, Any]) -> str | None:
    """The explanation line on a recipient's consent, or None when the spec reads no consent attribute."""
    name = consent.attribute
    if name is None:
        return None
    given = consents(consent, context)
    if context.get(name) is None:
        verdict = "taken as consent (missing: allow)" if given else "no consent (missing: deny)"
        return f"consent: {name} not given, {verdict}"
    return f"consent: {name}={context[name]!r}, {'given' if given else 'declined'}"


def consent_problems(raw: Mapping[str, Any]) -> list[Problem]:
    """Problems of meaning in a raw spec's ``consent`` (pydantic checks its structure)."""
    consent, design = raw.get("consent"), raw.get("design")
    if not isinstance(consent, Mapping) or not isinstance(design, Mapping):
        return []
    kind = design.get("type")
    if consent.get("without_consent") != "randomize" or not isinstance(kind, str):
        return []
    if kind in RANDOMIZABLE_DESIGNS:
        return []
    designs = ", ".join(RANDOMIZABLE_DESIGNS)
    return [
        Problem(
            "consent.without_consent",
            f"randomize needs a design that chooses without the context ({designs}); a {kind} design"
            " reads the recipient's context, so use 'defaults'",
        )
    ]


def consent_warnings(spec: ExperimentSpec) -> list[str]:
    """What the create answer says about consent: a spec that relies on the default declaration."""
    if "consent" in spec.model_fields_set:
        return []
    name = spec.consent.attribute
    return [
        f"consent: not declared, so the default applies: a recipient whose context has no {name!r} (or a"
        f" null one) has not consented, gets the default variants (reason no_consent) and has no context"
        f" stored; declare consent: {{attribute: {name}, missing: deny}} to say so"
    ]
