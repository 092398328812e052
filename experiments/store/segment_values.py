"""A decision's segment text and covariate number per attribute, computed in Python as the log's SQL
computes them (:mod:`experiments.store.segments`), for the breakdown rollups to key by at write time.

The SQL reads the stored JSON context: PostgreSQL's ``context ->> 'attr'`` gives a string's text, a
boolean as ``true``/``false``, any other value as its JSON text as written (the store writes JSON with
:func:`json.dumps`: a float as its ``repr``, ``1.0`` stays ``1.0``, a nested value as ``json.dumps``
spells it); SQLite's ``json_extract`` cast to text gives a string's text, booleans spelled as JSON (the
SQL asks ``json_type`` first), an integer in decimal, and a real or a nested value as SQLite renders
them. SQLite's rendering of reals (15 significant digits) and of nested JSON (compact) is its own, so
on SQLite those values are rendered by the database's own library, all of a write's at once
(:func:`segment_texts`): the same expression over a JSON array of them. Missing, null, or no context
(SQL or JSON null, not an object): None. The covariate is a JSON number (not a boolean) as a float.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy.engine import Connection

from experiments.assignment import CompiledExperiment, compile_experiment
from experiments.breakdown_deltas import DecisionState
from experiments.send_time import SEND_TIME_SLOT
from experiments.spec import ExperimentSpec
from experiments.store.summaries import event_types
from experiments.store.tables import NO_POLICY_VERSION

_INT64 = (-(2**63), 2**63 - 1)


def segment_attributes(compiled: CompiledExperiment) -> tuple[str, ...]:
    """The attributes results can break down by: those stored with the decisions, and ``send_time``
    when the experiment chooses it; sorted."""
    names = set(compiled.stored_attributes)
    if compiled.send_time is not None:
        names.add(SEND_TIME_SLOT)
    return tuple(sorted(names))


def covariate_attributes(compiled: CompiledExperiment) -> tuple[str, ...]:
    """The attributes CUPED can adjust by: those stored with the decisions; sorted."""
    return tuple(sorted(compiled.stored_attributes))


def from_variants(compiled: CompiledExperiment) -> frozenset[str]:
    """The segment attributes read from the decision's variants, not its context (the send hour)."""
    return frozenset({SEND_TIME_SLOT}) if compiled.send_time is not None else frozenset()


@lru_cache(maxsize=256)
def compiled_of_text(text: str, version: int) -> CompiledExperiment:
    """The compiled spec of a stored spec text (a spec version never changes; memoised by its text)."""
    return compile_experiment(ExperimentSpec.model_validate_json(text), version)


class _Render:
    """A value whose text SQLite renders itself (a real, a nested value, an integer past 64 bits)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _text(value: Any, dialect: str) -> str | None | _Render:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int) and (dialect != "sqlite" or _INT64[0] <= value <= _INT64[1]):
        return str(value)
    if dialect == "sqlite":
        return _Render(value)
    return json.dumps(value)  # a float's repr, a nested value as the store wrote it


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _object(value: Any) -> Mapping[str, Any]:
    if isinstance(value, str):
        value = json.loads(value)
    return value if isinstance(value, Mapping) else {}


def _sqlite_texts(conn: Connection, values: Sequence[Any]) -> list[str | None]:
    """SQLite's text of each value, by the expression of :func:`experiments.store.segments._context_text`
    over a JSON array of them."""
    document = json.dumps(list(values))
    query = ("SELECT key, CASE WHEN type IN ('true', 'false') THEN type ELSE CAST(value AS TEXT) END "
             "FROM json_each(?)")
    found = dict(conn.exec_driver_sql(query, (document,)).all())
    return [found.get(j) for j in range(len(values))]


def segment_texts(conn: Connection, compiled: CompiledExperiment, rows: Sequence[tuple[Any, Any]],
                  skip: frozenset[str] = frozenset()) -> list[tuple[tuple[str, str | None], ...]]:
    """Per decision (``(context, variants)``, each a mapping or its JSON text), ``(attribute, text)``
    for every :func:`segment_attributes` but those in ``skip``, as
    :func:`experiments.store.segments.segment_arm_stats` reads them on ``conn``'s database."""
    dialect = conn.dialect.name
    variant_attributes = from_variants(compiled)
    attributes = tuple(a for a in segment_attributes(compiled) if a not in skip)
    out: list[list[Any]] = []
    pending: list[tuple[int, int]] = []
    for context, variants in rows:
        ctx = _object(context)
        chosen = _object(variants) if variant_attributes else {}
        texts = []
        for attribute in attributes:
            source = chosen if attribute in variant_attributes else ctx
            text = _text(source.get(attribute), dialect)
            if isinstance(text, _Render):
                pending.append((len(out), len(texts)))
            texts.append(text)
        out.append(texts)
    if pending:
        rendered = _sqlite_texts(conn, [out[i][j].value for i, j in pending])
        for (i, j), text in zip(pending, rendered, strict=True):
            out[i][j] = text
    return [tuple(zip(attributes, texts, strict=True)) for texts in out]


def covariate_numbers(compiled: CompiledExperiment, context: Any, attributes: Sequence[str] | None = None
                      ) -> tuple[tuple[str, float | None], ...]:
    """``(attribute, number)`` for every :func:`covariate_attributes` (or ``attributes``, those
    already listed) of a decision's context (a mapping or its JSON text): the attribute when it is a
    JSON number, else None."""
    ctx = _object(context)
    names = covariate_attributes(compiled) if attributes is None else attributes
    return tuple((a, _number(ctx.get(a))) for a in names)


def decision_states(
    conn: Connection, compiled: CompiledExperiment, rows: Sequence[Mapping[str, Any]],
    skip: frozenset[str] = frozenset(),
) -> list[DecisionState]:
    """The :class:`DecisionState` (reward 0, no event) of each learnable decision row (a mapping of
    ``policy_version``, ``arm``, ``propensity``, ``context``, ``variants``); the segment attributes in
    ``skip`` (overflowed: not kept) left out."""
    # parsed once, and only when the version records attributes from it (most adaptive specs record none)
    covariates = covariate_attributes(compiled)
    contexts = [_object(r["context"]) for r in rows] if compiled.stored_attributes else [{}] * len(rows)
    texts = segment_texts(conn, compiled, [(c, r["variants"]) for c, r in zip(contexts, rows, strict=True)],
                          skip)
    flags = (0,) * len(event_types(compiled))
    return [
        DecisionState(
            NO_POLICY_VERSION if r["policy_version"] is None else int(r["policy_version"]),
            int(r["arm"]), float(r["propensity"]), segments, covariate_numbers(compiled, c, covariates),
            flags=flags,
        )
        for r, c, segments in zip(rows, contexts, texts, strict=True)
    ]
