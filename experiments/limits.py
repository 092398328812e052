"""Every bound on what SendLab accepts and stores, written once.

The tables (column lengths), the API models (field bounds), the command line (its checks) and the
core's own input checks import these names; a limit changed here changes everywhere it applies.
"""

from __future__ import annotations

# ---------------------------------------------------------------- identifiers and names

#: A recipient id, an outcome's ``event_id`` and the ``decision_id`` it names.
MAX_ID_LENGTH = 128
#: An outcome's ``type`` (an event name the spec's reward knows).
MAX_EVENT_TYPE_LENGTH = 64
#: An experiment key (the spec's ``key`` pattern allows 1 to 64 characters).
MAX_KEY_LENGTH = 64
#: A variant id within a slot.
MAX_VARIANT_ID_LENGTH = 64
#: A context attribute name (it goes into a JSON path).
MAX_ATTRIBUTE_LENGTH = 64
#: A stored decision id: a version-7 UUID in its 36-character text form.
DECISION_ID_LENGTH = 36
#: A decision's ``reason`` (``policy``, ``holdout``, ``no_consent``, ...).
MAX_REASON_LENGTH = 32
#: An experiment's status, and an outcome's ``after_learning`` mark.
MAX_STATUS_LENGTH = 16
#: An outcome's ``user_agent``.
MAX_USER_AGENT_LENGTH = 1024
#: A timestamp written as text (ISO 8601) in a request.
MAX_TIMESTAMP_TEXT_LENGTH = 64

# ---------------------------------------------------------------- batch sizes

#: Recipients in one batch assignment.
MAX_BATCH = 100_000
#: Sample recipients in one preview.
MAX_PREVIEW_RECIPIENTS = 1000
#: Outcome events in one post.
MAX_EVENTS = 100_000
#: Rows the command line sends per call when it reads a file of recipients or outcomes.
CLI_FILE_BATCH = 10_000
#: Policy decisions whose contexts an insight reads.
MAX_INSIGHT_SAMPLE = 100_000

# ---------------------------------------------------------------- value bounds

#: The largest outcome value in absolute value (revenue of one event): a decision's reward adds its
#: values up, and results sum rewards, their squares and cubes over every decision, which must stay
#: finite.
MAX_OUTCOME_VALUE = 1e12
#: Distinct values of a segment attribute (a category, not an identifier or a continuous number).
MAX_SEGMENTS = 50
#: The largest number in absolute value in a context value stored with a decision (the attributes a
#: policy, a rule, a segment or a covariate reads): 2**53, below which every integer is exact in a
#: double. A contextual policy squares these numbers and sums them over every decision it learns from,
#: and so does CUPED; within this bound those sums stay finite and well inside a double's range.
MAX_CONTEXT_NUMBER = 2**53
#: The longest string of a context value stored with a decision (``record``, a contextual policy's
#: attributes), in characters.
MAX_CONTEXT_STRING_LENGTH = 1_024

# ---------------------------------------------------------------- nesting

#: How deep a stored context value may nest (lists and mappings).
MAX_CONTEXT_DEPTH = 32
#: The items of each list or mapping in a stored context value.
MAX_CONTEXT_ITEMS = 1_000
#: Conditions nest at most this many levels (``{"not": {"attr": ...}}`` is two): deeper ones are refused
#: when the spec is saved, so that no evaluation, explanation or serialization of one can recurse deeply.
MAX_CONDITION_DEPTH = 32
#: How deep a spec document may nest (mappings and lists), and how many values it may hold in all.
MAX_SPEC_DEPTH = 100
MAX_SPEC_VALUES = 100_000

# ---------------------------------------------------------------- spec bounds

#: The largest variant weight and the largest reward weight in absolute value: a reward sums at most one
#: weight per event type, so its sums, squares and cubes over any number of decisions stay finite.
MAX_WEIGHT = 1e6
#: The longest reward window and learning delay, in hours (ten years).
MAX_HOURS = 87_600.0
#: The longest string of a spec (a variant's content, a name, ...), in characters.
MAX_SPEC_STRING_LENGTH = 65_536
#: Slots of one spec, and variants of one slot.
MAX_SLOTS = 32
MAX_VARIANTS_PER_SLOT = 256
#: The most arms (combinations of the slots' variants) a design may have, by design type. A hash
#: design (``ab``, ``multivariate``) keeps one row of counts per arm in its results; a bandit draws
#: over every arm at each assignment and keeps a posterior per arm; a contextual policy scores every
#: arm against each recipient's context (a model per arm, or one example per arm for Vowpal Wabbit).
MAX_ARMS_BY_DESIGN: dict[str, int] = {"ab": 4_096, "multivariate": 4_096, "bandit": 256, "contextual": 64}

# ---------------------------------------------------------------- request bodies

#: Request bodies, in bytes, by route (``api.request_guard``): a whole send's batch and bulk outcomes
#: (100,000 recipients or events), the inline history of ``/v1/features/compute`` (20,000 events of
#: at most 330 bytes each), a spec, a preview's recipients, a page's form, and every other route.
MAX_BULK_BODY_BYTES = 64 * 1024 * 1024
MAX_FEATURES_BODY_BYTES = 8 * 1024 * 1024
MAX_SPEC_BODY_BYTES = 2 * 1024 * 1024
MAX_PREVIEW_BODY_BYTES = 4 * 1024 * 1024
MAX_FORM_BODY_BYTES = 16 * 1024
MAX_BODY_BYTES = 1024 * 1024

# ---------------------------------------------------------------- failed keys

#: Failed keys per client (``api.throttle``): a client may fail this many times in a burst, then one
#: more attempt per :data:`FAILED_KEY_REFILL_SECONDS`; beyond that it gets 429 with ``Retry-After``.
FAILED_KEY_BURST = 10
FAILED_KEY_REFILL_SECONDS = 1.0
#: Clients whose failures are remembered at once (the oldest are forgotten first).
FAILED_KEY_CLIENTS = 10_000

# ---------------------------------------------------------------- per-process caches

#: What one process keeps of what it built from the store (:class:`experiments.store.repository.
#: Repository`), the least recently used dropped first: compiled specs by ``(key, version)`` and
#: restored latest policies by experiment (a contextual model can be megabytes).
CACHED_SPECS = 1_024
CACHED_POLICIES = 128
#: Recipients' rows of the feature table kept per process by ``(version, recipient_id)``, an absent
#: recipient included (:class:`experiments.feature_context.FeatureContexts`): a few hundred bytes each.
CACHED_FEATURE_ROWS = 200_000
