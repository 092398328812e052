"""Structured conditions and targeting rules: parsed, evaluated with an explanation, checked for overlap.

A condition is ``{"all": [...]}``, ``{"any": [...]}``, ``{"not": {...}}`` or a comparison
``{"attr": name, "op": op, "value": v}`` with ``op`` one of eq, ne, in, not_in, lt, lte, gt, gte,
exists, contains. Nothing is ever ``eval``-ed. A comparison over a missing attribute (absent or null)
is false, and the explanation says the attribute is missing; only ``exists`` looks at presence itself
(``{"attr": a, "op": "exists", "value": false}`` holds when ``a`` is missing). ``not`` negates the
result of what it wraps, missing attributes included.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from experiments.errors import Problem
from experiments.limits import MAX_CONDITION_DEPTH

OPS = ("eq", "ne", "in", "not_in", "lt", "lte", "gt", "gte", "exists", "contains")
_ORDER_OPS = {
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
}


@dataclass(frozen=True)
class Compare:
    attr: str
    op: str
    value: Any = None


@dataclass(frozen=True)
class AllOf:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class NotOf:
    item: Condition


Condition = Compare | AllOf | AnyOf | NotOf


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def parse_condition(raw: Any, path: str, depth: int = 1) -> tuple[Condition | None, list[Problem]]:
    """Parse a raw condition; return it (None when broken) and every problem found, with paths.

    ``depth`` is the level of ``raw`` (1 at the top); a condition nested deeper than
    :data:`MAX_CONDITION_DEPTH` is a problem, and what it wraps is not read.
    """
    if depth > MAX_CONDITION_DEPTH:
        reason = f"nested too deeply: conditions nest at most {MAX_CONDITION_DEPTH} levels"
        return None, [Problem(path, reason)]
    if not isinstance(raw, Mapping):
        return None, [Problem(path, f"a condition is a mapping, got {type(raw).__name__}")]
    keys = set(raw)
    if keys & {"all", "any"}:
        if len(keys) != 1:
            return None, [Problem(path, f"'all'/'any' must be the only key, got {sorted(keys)}")]
        name = next(iter(keys))
        items = raw[name]
        if not isinstance(items, list) or not items:
            return None, [Problem(f"{path}.{name}", "a non-empty list of conditions is required")]
        parsed, problems = [], []
        for i, item in enumerate(items):
            cond, errs = parse_condition(item, f"{path}.{name}[{i}]", depth + 1)
            parsed.append(cond)
            problems += errs
        if problems:
            return None, problems
        return (AllOf if name == "all" else AnyOf)(tuple(parsed)), []  # type: ignore[arg-type]
    if "not" in keys:
        if len(keys) != 1:
            return None, [Problem(path, f"'not' must be the only key, got {sorted(keys)}")]
        cond, problems = parse_condition(raw["not"], f"{path}.not", depth + 1)
        return (NotOf(cond) if cond is not None else None), problems
    return _parse_compare(raw, path)


def _parse_compare(raw: Mapping[str, Any], path: str) -> tuple[Condition | None, list[Problem]]:
    problems = []
    extra = set(raw) - {"attr", "op", "value"}
    if extra:
        problems.append(Problem(path, f"unknown keys {sorted(extra)} (a comparison has attr, op, value)"))
    attr, op = raw.get("attr"), raw.get("op")
    if not isinstance(attr, str) or not attr:
        problems.append(Problem(f"{path}.attr", "an attribute name (non-empty string) is required"))
    if not isinstance(op, str) or op not in OPS:
        problems.append(Problem(f"{path}.op", f"unknown operator {op!r} (one of {', '.join(OPS)})"))
        return None, problems
    value = raw.get("value", True if op == "exists" else None)
    if op in ("in", "not_in") and not isinstance(value, list):
        problems.append(Problem(f"{path}.value", f"'{op}' needs a list"))
    elif op in _ORDER_OPS and not _is_number(value):
        problems.append(Problem(f"{path}.value", f"'{op}' needs a number, got {value!r}"))
    elif op == "exists" and not isinstance(value, bool):
        problems.append(Problem(f"{path}.value", "'exists' takes true or false"))
    elif op in ("eq", "ne", "contains") and ("value" not in raw or isinstance(value, list | dict)):
        problems.append(Problem(f"{path}.value", f"'{op}' needs a single value"))
    if problems:
        return None, problems
    return Compare(attr, op, value), []


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return bool(a == b)


def _compare(cond: Compare, context: Mapping[str, Any]) -> tuple[bool, str]:
    present = context.get(cond.attr) is not None
    label = f"{cond.attr} {cond.op} {cond.value!r}"
    if cond.op == "exists":
        result = present == cond.value
        return result, f"{label}: {str(result).lower()}"
    if not present:
        return False, f"{label}: false ({cond.attr} is missing)"
    actual = context[cond.attr]
    if cond.op == "eq":
        result = _same(actual, cond.value)
    elif cond.op == "ne":
        result = not _same(actual, cond.value)
    elif cond.op == "in":
        result = any(_same(actual, v) for v in cond.value)
    elif cond.op == "not_in":
        result = not any(_same(actual, v) for v in cond.value)
    elif cond.op in _ORDER_OPS:
        if not _is_number(actual):
            return False, f"{label}: false ({cond.attr}={actual!r} is not a number)"
        result = _ORDER_OPS[cond.op](actual, cond.value)
    else:  # contains
        if isinstance(actual, str):
            result = isinstance(cond.value, str) and cond.value in actual
        elif isinstance(actual, list | tuple | set | frozenset):
            result = any(_same(x, cond.value) for x in actual)
        else:
            return False, f"{label}: false ({cond.attr}={actual!r} is neither a string nor a list)"
    return result, f"{label}: {str(result).lower()} ({cond.attr}={actual!r})"


def evaluate(cond: Condition, context: Mapping[str, Any]) -> tuple[bool, list[str]]:
    """Whether ``cond`` holds for ``context``, with one explanation line per comparison evaluated."""
    if isinstance(cond, Compare):
        result, line = _compare(cond, context)
        return result, [line]
    if isinstance(cond, NotOf):
        result, lines = evaluate(cond.item, context)
        return (not result), lines + [f"not: {str(not result).lower()}"]
    lines: list[str] = []
    results = []
    for item in cond.items:
        r, ls = evaluate(item, context)
        results.append(r)
        lines += ls
    return (all(results) if isinstance(cond, AllOf) else any(results)), lines


def holds(cond: Condition, context: Mapping[str, Any]) -> bool:
    """Whether ``cond`` holds (no explanation: the fast path of batch assignment)."""
    if isinstance(cond, Compare):
        return _compare(cond, context)[0]
    if isinstance(cond, NotOf):
        return not holds(cond.item, context)
    if isinstance(cond, AllOf):
        return all(holds(c, context) for c in cond.items)
    return any(holds(c, context) for c in cond.items)


def attributes(cond: Condition) -> set[str]:
    """The attribute names a condition reads."""
    if isinstance(cond, Compare):
        return {cond.attr}
    if isinstance(cond, NotOf):
        return attributes(cond.item)
    return set().union(*(attributes(c) for c in cond.items))


def _comparisons(cond: Condition) -> list[Compare]:
    if isinstance(cond, Compare):
        return [cond]
    if isinstance(cond, NotOf):
        return _comparisons(cond.item)
    return [c for item in cond.items for c in _comparisons(item)]


_MISSING = object()


def _candidates(comparisons: Sequence[Compare]) -> dict[str, list[Any]]:
    """Values per attribute that reach every branch of the comparisons (plus 'missing')."""
    out: dict[str, list[Any]] = {}
    for c in comparisons:
        vals = out.setdefault(c.attr, [_MISSING])
        values = c.value if isinstance(c.value, list) else [c.value]
        for v in values:
            if c.op == "exists":
                continue
            if c.op == "contains":
                vals += [[v], f"{v}"] if isinstance(v, str) else [[v]]
            elif _is_number(v):
                vals += [v - 1, v, v + 1]
            elif isinstance(v, bool):
                vals += [v, not v]
            else:
                vals += [v, f"{v}~other"]
        if c.op == "exists":
            vals.append("present")
    return {attr: list({repr(v): v for v in vals}.values()) for attr, vals in out.items()}


def find_example(conds: Sequence[Condition], max_tries: int = 20_000) -> dict[str, Any] | None:
    """A context under which every condition holds, by search over the values the conditions mention.

    Returns None when none is found within ``max_tries`` combinations (not a proof that none exists).
    """
    candidates = _candidates([c for cond in conds for c in _comparisons(cond)])
    names = sorted(candidates)
    for tries, combo in enumerate(itertools.product(*(candidates[n] for n in names))):
        if tries >= max_tries:
            return None
        context = {n: v for n, v in zip(names, combo, strict=True) if v is not _MISSING}
        if all(holds(c, context) for c in conds):
            return context
    return None


@dataclass(frozen=True)
class TargetingRule:
    """A compiled rule: when ``when`` holds, slot ``s`` may only use ``allowed[s]`` (variant ids)."""

    index: int
    name: str
    when: Condition
    allowed: dict[str, frozenset[str]]


def compile_rules(raw_rules: Sequence[Any]) -> list[TargetingRule]:
    """Compile validated spec rules (``experiments.spec.Rule``) into :class:`TargetingRule`."""
    out = []
    for i, rule in enumerate(raw_rules):
        cond, problems = parse_condition(rule.when, f"rules[{i}].when")
        if cond is None:
            raise ValueError("; ".join(map(str, problems)))
        allowed = {slot: frozenset(ids) for slot, ids in rule.restrict.items()}
        for slot, vid in rule.force.items():
            allowed[slot] = allowed.get(slot, frozenset([vid])) & frozenset([vid])
        out.append(TargetingRule(i, rule.name or f"rules[{i}]", cond, allowed))
    return out


def apply_rules(
    rules: Sequence[TargetingRule],
    slot_ids: Mapping[str, Sequence[str]],
    context: Mapping[str, Any],
    explain: bool = False,
) -> tuple[dict[str, frozenset[str]], list[str]]:
    """The variants each slot may use for ``context``: the intersection of the matching rules' sets.

    A matching rule that would leave a slot without any variant is ignored for that slot (earlier rules
    win) and the explanation says so. Returns the allowed ids per slot and the explanation lines
    (empty unless ``explain``).
    """
    allowed = {slot: frozenset(ids) for slot, ids in slot_ids.items()}
    lines: list[str] = []
    for rule in rules:
        if explain:
            matched, why = evaluate(rule.when, context)
            lines.append(f"{rule.name}: {'applies' if matched else 'does not apply'} ({'; '.join(why)})")
        else:
            matched = holds(rule.when, context)
        if not matched:
            continue
        for slot, ids in rule.allowed.items():
            narrowed = allowed[slot] & ids
            if narrowed:
                allowed[slot] = narrowed
            elif explain:
                lines.append(f"{rule.name}: ignored for slot {slot!r} (it would leave no variant)")
    return allowed, lines


def find_conflicts(rules: Sequence[TargetingRule]) -> list[str]:
    """Warnings for pairs of rules that can both apply and disagree on a slot, with an example recipient."""
    warnings = []
    for a, b in itertools.combinations(rules, 2):
        slots = sorted(s for s in set(a.allowed) & set(b.allowed) if a.allowed[s] != b.allowed[s])
        if not slots:
            continue
        example = find_example([a.when, b.when])
        if example is None:
            continue
        detail = ", ".join(f"{s}: {sorted(a.allowed[s])} vs {sorted(b.allowed[s])}" for s in slots)
        warnings.append(
            f"{a.name} and {b.name} overlap and disagree ({detail}); "
            f"for example a recipient with {example} triggers both"
        )
    return warnings
