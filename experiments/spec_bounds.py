"""How large a spec may be: slots, variants per slot, and arms per design type.

Checked on the raw document when a spec is validated, before any policy, arm table or model is built
for it, so that a spec of millions of arms is refused in microseconds with the bound and its reason.
The numbers live in :mod:`experiments.limits`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from experiments.errors import Problem
from experiments.limits import MAX_ARMS_BY_DESIGN, MAX_SLOTS, MAX_VARIANTS_PER_SLOT

#: Why each design type has its bound on arms, as the error says it.
_WHY_BY_DESIGN = {
    "ab": "results keep counts per arm",
    "multivariate": "results keep counts per arm",
    "bandit": "the policy draws over every arm at each assignment",
    "contextual": "the policy scores every arm against each recipient's context",
}


def slot_sizes(raw: Mapping[str, Any]) -> dict[str, int]:
    """Each slot's number of variants, read defensively (0 for a slot that is not a list of variants),
    and the hours (or windows) of ``send_time`` (a choice among them, :mod:`experiments.send_time`) as
    ``send_time``."""
    slots = raw.get("slots")
    out: dict[str, int] = {}
    for name, slot in slots.items() if isinstance(slots, Mapping) else []:
        variants = slot.get("variants") if isinstance(slot, Mapping) else None
        out[str(name)] = len(variants) if isinstance(variants, list) else 0
    send_time = raw.get("send_time")
    for choices in ("hours", "windows"):
        listed = send_time.get(choices) if isinstance(send_time, Mapping) else None
        if isinstance(listed, list) and "send_time" not in out:
            out["send_time"] = len(listed)
    return out


def size_problems(raw: Mapping[str, Any]) -> list[Problem]:
    """Slots beyond :data:`MAX_SLOTS`, a slot beyond :data:`MAX_VARIANTS_PER_SLOT` variants, and arms
    beyond the design type's :data:`MAX_ARMS_BY_DESIGN`; empty when the spec's size is fine.

    Examples
    --------
    >>> variants = [{"id": str(i)} for i in range(20)]
    >>> spec = {"slots": {"subject": {"variants": variants}, "cta": {"variants": variants}},
    ...         "design": {"type": "bandit"}}
    >>> print(size_problems(spec)[0].message)  # doctest: +NORMALIZE_WHITESPACE
    a bandit design may have at most 256 arms (combinations of the slots' variants), this spec has
    400 (20 × 20): the policy draws over every arm at each assignment
    """
    sizes = slot_sizes(raw)
    problems = []
    if len(sizes) > MAX_SLOTS:
        problems.append(Problem("slots", f"at most {MAX_SLOTS} slots, got {len(sizes)}"))
    for name, size in sizes.items():
        if size > MAX_VARIANTS_PER_SLOT:
            reason = f"at most {MAX_VARIANTS_PER_SLOT} variants per slot, got {size}"
            problems.append(Problem(f"slots.{name}.variants", reason))
    design = raw.get("design")
    kind = design.get("type") if isinstance(design, Mapping) else None
    if not isinstance(kind, str) or kind not in MAX_ARMS_BY_DESIGN or problems:
        return problems
    bound = MAX_ARMS_BY_DESIGN[kind]
    n_arms = math.prod(max(size, 1) for size in sizes.values())
    if n_arms > bound:
        factors = " × ".join(str(max(size, 1)) for size in sizes.values())
        article = "an" if kind[0] in "aeiou" else "a"
        problems.append(
            Problem(
                "slots",
                f"{article} {kind} design may have at most {bound:,} arms (combinations of the slots' "
                f"variants), this spec has {n_arms:,} ({factors}): {_WHY_BY_DESIGN[kind]}",
            )
        )
    return problems
