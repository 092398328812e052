"""The catalog of experiments: create (a new spec version), list, read, pause / resume / archive, and
graduate a warm-started policy."""

from __future__ import annotations

from typing import Literal

from sqlalchemy.exc import IntegrityError

from bandit import Policy, PolicyError, make_policy
from experiments.arms import combination_features
from experiments.assignment import CompiledExperiment, compile_experiment
from experiments.consent import consent_warnings
from experiments.errors import Conflict, InvalidInput, Problem, SpecError
from experiments.hashing import unit_hash
from experiments.models import ExperimentInfo
from experiments.rules import find_conflicts
from experiments.service.core import ServiceCore
from experiments.spec import ExperimentSpec, check_spec, content_warnings
from experiments.store.repository import ExperimentRecord

STATUSES = ("running", "paused", "archived")


def policy_seed(spec: ExperimentSpec) -> int:
    """The seed of an experiment's policy (and of anything that must answer the same on the same data)."""
    return int(unit_hash(spec.hash_salt, "policy-seed") * 2**31)


def new_policy(compiled: CompiledExperiment) -> Policy:
    """A fresh policy of an adaptive design, seeded by :func:`policy_seed`."""
    design = compiled.spec.design
    options = dict(design.options)
    if design.vw_args is not None:
        options["vw_args"] = design.vw_args
    features = None
    if design.type == "contextual":
        features = combination_features(
            {
                slot: [{"id": v.id, **v.features} for v in compiled.variants_of(slot)]
                for slot in compiled.slot_names
            }
        )
    return make_policy(
        design.policy or "",
        compiled.n_arms,
        options=options,
        action_features=features,  # type: ignore[arg-type]
        seed=policy_seed(compiled.spec),
    )


class Catalog:
    """Create, list, read and change the status of experiments."""

    def __init__(self, core: ServiceCore) -> None:
        self._core = core

    def info(self, record: ExperimentRecord) -> ExperimentInfo:
        """An experiment as callers see it."""
        return ExperimentInfo(
            key=record.key,
            version=record.version,
            status=record.status,  # type: ignore[arg-type]
            spec=self._core.repo.compiled_of(record).spec,
            warnings=list(record.warnings),
            created_at=record.created_at,
            updated_at=record.updated_at,
            apprentice=record.apprentice,
        )

    def create(self, spec: ExperimentSpec) -> ExperimentInfo:
        """Save a spec: a new key starts at version 1 (running); a changed spec makes a new version.

        Saving the identical spec again returns the stored version. Warnings report rules that
        overlap and disagree, with an example recipient, and a spec that relies on the default consent
        declaration (:func:`experiments.consent.consent_warnings`).
        """
        check_spec(spec)
        compiled = compile_experiment(spec, 0)
        policy = None
        if compiled.adaptive:
            try:
                policy = new_policy(compiled)
            except (PolicyError, ValueError, TypeError) as exc:
                raise SpecError([Problem("design.options", str(exc))]) from exc
        warnings = find_conflicts(compiled.rules) + content_warnings(spec) + consent_warnings(spec)
        if spec.design.type == "ab" and len(spec.slots) > 1:
            warnings.append("an ab design over several slots buckets each slot independently (multivariate)")
        text = spec.canonical_json()
        for attempt in range(3):
            try:
                return self._save(spec.key, text, warnings, policy, spec.design.warm_start is not None)
            except IntegrityError:  # a concurrent create of the same key or version: read again
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _save(
        self, key: str, text: str, warnings: list[str], policy: Policy | None, apprentice: bool
    ) -> ExperimentInfo:
        repo, now = self._core.repo, self._core.now()
        with self._core.engine.begin() as conn:
            existing = repo.find_experiment(conn, key, lock=True)
            if existing is not None and existing.status == "archived":
                raise Conflict(f"experiment {key!r} is archived; use a new key")
            if existing is not None and existing.spec == text:
                return self.info(existing)
            repo.save_experiment(conn, key, text, warnings, apprentice, now, existing, policy)
            return self.info(repo.experiment(conn, key))

    def list(self) -> list[ExperimentInfo]:
        """Every experiment, by key."""
        with self._core.engine.connect() as conn:
            records = self._core.repo.experiments(conn)
        return [self.info(r) for r in records]

    def get(self, key: str) -> ExperimentInfo:
        """One experiment; NotFound if there is none under ``key``."""
        with self._core.engine.connect() as conn:
            return self.info(self._core.repo.experiment(conn, key))

    def set_status(self, key: str, status: Literal["running", "paused", "archived"]) -> ExperimentInfo:
        """Pause, resume or archive. Archiving is final (Conflict on any later change)."""
        if status not in STATUSES:
            raise InvalidInput("status", f"must be one of {', '.join(STATUSES)}, got {status!r}")
        repo = self._core.repo
        with self._core.engine.begin() as conn:
            record = repo.experiment(conn, key, lock=True)
            if record.status == "archived" and status != "archived":
                raise Conflict(f"experiment {key!r} is archived and cannot become {status}")
            repo.update_experiment(conn, key, self._core.now(), status=status)
            return self.info(repo.experiment(conn, key))

    def graduate(self, key: str) -> ExperimentInfo:
        """End the apprenticeship of a warm-started policy: from now on it chooses (and explores). A
        policy that graduated already is left as it is.

        Raises
        ------
        Conflict
            The design has no policy, or no ``warm_start``: there is nothing to graduate.
        """
        repo = self._core.repo
        with self._core.engine.begin() as conn:
            record = repo.experiment(conn, key, lock=True)
            compiled = repo.compiled_of(record)
            if not compiled.adaptive:
                raise Conflict(f"experiment {key!r} has no policy to graduate")
            if compiled.spec.design.warm_start is None:
                raise Conflict(f"experiment {key!r} has no warm start (design.warm_start): its policy "
                               "chooses from the first decision, there is nothing to graduate")
            if record.apprentice:
                repo.update_experiment(conn, key, self._core.now(), apprentice=False)
            return self.info(repo.experiment(conn, key))
