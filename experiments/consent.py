"""How a spec reads a recipient's consent, and what a recipient without consent gets. Pure, no I/O.

A spec declares ``consent: {attribute: consent, missing: deny, without_consent: defaults}`` (those are
the defaults). A recipient consents when the attribute holds a recognised affirmative value (``true``,
``1``, ``"yes"``, ``"granted"``, ``"opt-in"``, ...: :data:`GIVEN_WORDS`) and declines with a recognised
negative one (``false``, ``0``, ``"no"``, ``"denied"``, ``"opt-out"``, ...: :data:`DECLINED_WORDS`). Any
other value (a missing one, ``null``, a blank or unknown string, another number, an object or a list)
is read as missing: no consent unless ``missing: allow``. A privacy engine fails closed: ``"denied"``, a
blank CSV cell or ``"null"`` never counts as consent. ``attribute: null`` declares that the spec reads no
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

#: How a recipient's consent attribute reads: a recognised yes, a recognised no, or neither.
ConsentReading = Literal["given", "declined", "missing"]
#: The strings (compared lower-cased, stripped, with ``_`` and spaces read as ``-``) that give consent.
GIVEN_WORDS = frozenset({
    "true", "yes", "y", "1", "on", "granted", "accepted", "opt-in", "optin", "opted-in",
})
#: The strings (compared as :data:`GIVEN_WORDS`) that decline consent.
DECLINED_WORDS = frozenset({
    "false", "no", "n", "0", "off", "denied", "declined", "refused", "rejected", "withdrawn", "revoked",
    "opt-out", "optout", "opted-out", "unsubscribed",
})
#: The design types that can give a recipient without consent an arm without reading their context.
RANDOMIZABLE_DESIGNS = ("ab", "multivariate", "bandit")


class Consent(BaseModel):
    """How a spec reads consent: which context attribute, what a missing value means, and what a
    recipient without consent gets (the defaults, or a non-personalised arm)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    attribute: str | None = Field(default="consent", min_length=1, max_length=MAX_ATTRIBUTE_LENGTH)
    missing: Literal["deny", "allow"] = "deny"
    without_consent: Literal["defaults", "randomize"] = "defaults"


def read_consent(value: Any) -> ConsentReading:
    """How a consent attribute's value reads: ``given``, ``declined``, or ``missing`` for anything not
    recognised (None, a blank or unknown string, a number other than 0 and 1, an object, a list).

    Examples
    --------
    >>> [read_consent(v) for v in (True, 1, " Yes ", "opted_in", False, 0.0, "Denied", "opt out")]
    ['given', 'given', 'given', 'given', 'declined', 'declined', 'declined', 'declined']
    >>> [read_consent(v) for v in (None, "", "null", "maybe", -1, 1.5, {}, [])]
    ['missing', 'missing', 'missing', 'missing', 'missing', 'missing', 'missing', 'missing']
    """
    if isinstance(value, bool):
        return "given" if value else "declined"
    if isinstance(value, int | float):
        return "given" if value == 1 else "declined" if value == 0 else "missing"
    if isinstance(value, str):
        word = "-".join(value.strip().lower().replace("_", " ").split())
        return "given" if word in GIVEN_WORDS else "declined" if word in DECLINED_WORDS else "missing"
    return "missing"


def consents(consent: Consent, context: Mapping[str, Any]) -> bool:
    """Whether the recipient with ``context`` consents, as ``consent`` reads it.

    Examples
    --------
    >>> [consents(Consent(), c) for c in ({"consent": True}, {}, {"consent": None})]
    [True, False, False]
    >>> consents(Consent(missing="allow"), {}), consents(Consent(missing="allow"), {"consent": "no"})
    (True, False)
    >>> consents(Consent(), {"consent": "denied"}), consents(Consent(), {"consent": ""})
    (False, False)
    """
    if consent.attribute is None:
        return True
    reading = read_consent(context.get(consent.attribute))
    if reading == "missing":
        return consent.missing == "allow"
    return reading == "given"


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
    """The explanation line on a recipient's consent, or None when the spec reads no consent attribute.

    Examples
    --------
    >>> consent_line(Consent(), {"consent": "yes"}), consent_line(Consent(), {})
    ("consent: consent='yes', given", 'consent: consent not given, no consent (missing: deny)')
    >>> consent_line(Consent(), {"consent": "maybe"})
    "consent: consent='maybe' not recognised, so read as missing: no consent (missing: deny)"
    """
    name = consent.attribute
    if name is None:
        return None
    value = context.get(name)
    reading = read_consent(value)
    if reading != "missing":
        return f"consent: {name}={value!r}, {reading}"
    allowed = consent.missing == "allow"
    verdict = "taken as consent (missing: allow)" if allowed else "no consent (missing: deny)"
    if value is None:
        return f"consent: {name} not given, {verdict}"
    return f"consent: {name}={value!r} not recognised, so read as missing: {verdict}"


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
        f" null or unrecognised one) has not consented, gets the default variants (reason no_consent) and"
        f" has no context stored; declare consent: {{attribute: {name}, missing: deny}} to say so"
    ]
