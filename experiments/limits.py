"""Every bound on what SendLab accepts and stores, written once.

The tables (column lengths), the API models (field bounds), the command line (its checks) and the
core's own input checks import these names; a limit changed here changes everywhere it applies.
"""

from __future__ import annotations

#: A recipient id, an outcome's ``event_id`` and the ``decision_id`` it names.
MAX_ID_LENGTH = 128
#: An outcome's ``type`` (an event name the spec's reward knows).
MAX_EVENT_TYPE_LENGTH = 64

#: The largest outcome value in absolute value (revenue of one event): a decision's reward adds its
#: values up, and results sum rewards, their squares and cubes over every decision, which must stay
#: finite.
MAX_OUTCOME_VALUE = 1e12

#: Distinct values of a segment attribute (a category, not an identifier or a continuous number).
MAX_SEGMENTS = 50

#: Slots of one spec, and variants of one slot.
MAX_SLOTS = 32
MAX_VARIANTS_PER_SLOT = 256
#: The most arms (combinations of the slots' variants) a design may have, by design type. A hash
#: design (``ab``, ``multivariate``) keeps one row of counts per arm in its results; a bandit draws
#: over every arm at each assignment and keeps a posterior per arm; a contextual policy scores every
#: arm against each recipient's context (a model per arm, or one example per arm for Vowpal Wabbit).
MAX_ARMS_BY_DESIGN: dict[str, int] = {"ab": 4_096, "multivariate": 4_096, "bandit": 256, "contextual": 64}
