"""The feature table at send time: storing a computation as a new version, and filling the contexts of
a spec with ``context_from: features`` from the latest one.

:func:`store_features` writes a :class:`~experiments.features.FeatureSet` as a version of the feature
table (:mod:`experiments.store.features`). :class:`FeatureContexts` fills each recipient's context from
the latest version at assignment: the stored attributes first, then the fields sent with the recipient,
which win. What it read is kept per version (versions never change once written), within a bound, so a
recipient assigned again reads nothing but the latest version's number; an erasure through the service
forgets the recipient's kept rows in its process (:meth:`FeatureContexts.forget`; another process keeps
them until they are evicted or a new version is stored). A recipient the version does not
hold falls back to the defaults (``no_features``), as does one whose rules, eligibility or policy read a
score the recipient lacks (``no_score``) or whose model's cross-validated AUC is below the spec's
``min_score_auc`` (``low_confidence_score``); a score sent with the recipient is the caller's and is used.
The decision records the version (``feature_version``; None when none was stored).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection, Engine

from experiments.compiled import CompiledExperiment
from experiments.limits import CACHED_FEATURE_ROWS
from experiments.rules import attributes
from experiments.store.features import (
    FeatureVersion,
    feature_attributes,
    feature_version,
    latest_feature_version,
    store_feature_version,
)
from experiments.store.lru import LRU

if TYPE_CHECKING:
    from experiments.features import FeatureSet

#: The attributes of the feature table that are a model's predictions (checked for confidence).
SCORE_ATTRIBUTES = frozenset({"p_convert"})
#: Reasons screening gives that no feature changes: the recipient gets the defaults for them anyway.
_KEPT_REASONS = frozenset({"paused", "no_consent"})
#: A recipient the cache has not seen (None is kept for one the version lacks).
_UNSEEN = object()


def store_features(engine: Engine, features: FeatureSet, created_at: datetime) -> FeatureVersion:
    """Store ``features`` as a new version of the feature table (one transaction) and return it."""
    s, seg = features.settings, features.segmentation
    settings = {
        "window_days": s.window_days, "engagement_windows": list(s.engagement_windows),
        "purchase_type": s.purchase_type, "k": seg.k, "chosen_by": seg.chosen_by,
        "horizon_days": s.horizon_days, "seed": s.seed,
    }
    model = None
    if features.scores is not None:
        r = features.scores.report
        model = {"auc": r.auc, "log_loss": r.log_loss, "base_log_loss": r.base_log_loss,
                 "horizon_days": r.horizon_days, "folds": r.folds, "training_rows": r.training_rows,
                 "positives": r.positives}
    events = features.events
    return store_feature_version(
        engine, as_of=s.as_of.to_pydatetime(), settings=settings,
        events={"read": events.read, "used": events.used, "after_as_of": events.after_as_of},
        model=model, rows=((r.recipient_id, r.to_context()) for r in features.recipients()),
        created_at=created_at,
    )


@dataclass(frozen=True)
class FilledContexts:
    """Recipients with their contexts filled, the version read, and per recipient a fallback reason
    (None: the design chooses as screening says)."""

    recipients: list[tuple[str, Mapping[str, Any]]]
    version: int | None
    reasons: list[str | None] | None = None

    def screen(self, screened: Sequence[str | None]) -> list[str | None]:
        """Screening's reasons with the features' fallbacks; ``paused`` and ``no_consent`` stay. A
        recipient without features falls back even in the holdout, so that holdout and treated
        recipients are alike (both have features)."""
        if self.reasons is None:
            return list(screened)
        return [s if s in _KEPT_REASONS or f is None else f
                for s, f in zip(screened, self.reasons, strict=True)]


def score_attributes_read(compiled: CompiledExperiment) -> frozenset[str]:
    """The score attributes the spec's rules, eligibility or policy read (not ``record``: no decision
    depends on those)."""
    read = set(compiled.spec.design.context)
    for rule in compiled.rules:
        read |= attributes(rule.when)
    if compiled.eligibility is not None:
        read |= attributes(compiled.eligibility)
    return frozenset(read & SCORE_ATTRIBUTES)


class FeatureContexts:
    """Fills contexts from the latest feature version, keeping what it read (see the module)."""

    def __init__(self, max_cached: int = CACHED_FEATURE_ROWS) -> None:
        self._versions: LRU[int, FeatureVersion] = LRU(4)
        self._rows: LRU[tuple[int, str], dict[str, Any] | None] = LRU(max_cached)
        self._row_versions: set[int] = set()  # the versions of which rows were kept (few)

    def fill(
        self,
        conn: Connection,
        compiled: CompiledExperiment,
        recipients: Sequence[tuple[str, Mapping[str, Any]]],
    ) -> FilledContexts:
        """The recipients with their contexts filled (unchanged unless the spec has ``context_from:
        features``), read on ``conn``."""
        if compiled.spec.context_from != "features":
            return FilledContexts(list(recipients), None)
        version = latest_feature_version(conn)
        if version is None:
            return FilledContexts(list(recipients), None, ["no_features"] * len(recipients))
        info = self._version(conn, version)
        stored = self._attributes(conn, version, [rid for rid, _ in recipients])
        scores = score_attributes_read(compiled)
        floor = compiled.spec.min_score_auc
        model_auc = None if info.model is None else info.model.get("auc")
        low = floor is not None and (model_auc is None or model_auc < floor)
        filled: list[tuple[str, Mapping[str, Any]]] = []
        reasons: list[str | None] = []
        for rid, context in recipients:
            found = stored.get(rid)
            if found is None:
                filled.append((rid, context))
                reasons.append("no_features")
                continue
            filled.append((rid, {**found, **context}))
            from_store = [a for a in scores if a not in context]
            if any(a not in found for a in from_store):
                reasons.append("no_score")
            elif low and from_store:
                reasons.append("low_confidence_score")
            else:
                reasons.append(None)
        return FilledContexts(filled, version, reasons)

    def forget(self, recipient_id: str) -> None:
        """Drop the rows kept of ``recipient_id`` in every version (their rows were erased): the next
        assignment reads the store. An assignment that read the rows before the erasure committed may
        still keep them afterwards."""
        for version in list(self._row_versions):
            self._rows.pop((version, recipient_id))

    def _version(self, conn: Connection, version: int) -> FeatureVersion:
        info = self._versions.get(version)
        if info is None:
            info = feature_version(conn, version)
            assert info is not None, "the latest version exists"
            self._versions[version] = info
        return info

    def _attributes(self, conn: Connection, version: int, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The stored rows of ``ids`` in ``version``: those kept, and the others read (and kept, an
        absent one as None). Rows of older versions are not read again and leave as the least used."""
        found: dict[str, dict[str, Any]] = {}
        missing: list[str] = []
        for rid in ids:
            row = self._rows.get((version, rid), _UNSEEN)
            if row is _UNSEEN:
                missing.append(rid)
            elif row is not None:
                found[rid] = row
        if missing:
            read = feature_attributes(conn, version, missing)
            found.update(read)
            self._row_versions.add(version)
            for rid in missing:
                self._rows[(version, rid)] = read.get(rid)
        return found
