"""The Vowpal Wabbit options a spec may set, parsed by SendLab before VW ever sees them.

A spec's ``vw_args`` is untrusted text. VW itself would read and write files for some of its options
(``-f``, ``-p``, ``-r``, ``--output_feature_regularizer_text`` and a bare word, which it takes as a data
file), so SendLab does not hand VW the text: it parses it against an allowlist of exploration and
learning options whose values are numbers, namespace letters or a fixed choice, and gives VW only the
canonical tokens it built. Nothing here can name a path.
"""

from __future__ import annotations

import math
import re
import shlex
from dataclasses import dataclass
from typing import Literal

from bandit.policy import PolicyError

Kind = Literal["flag", "number", "count", "choice", "namespaces"]

#: The exploration algorithms of ``--cb_explore_adf``; at most one may be chosen.
EXPLORERS = ("first", "bag", "cover", "softmax", "squarecb", "regcb", "regcbopt", "rnd", "synthcover")
#: VW's weight table has ``2**bit_precision`` entries per model; ensembles hold one model each.
MAX_WEIGHTS = 2**24
_NAMESPACE = re.compile(r"[A-Za-z0-9:]+")


@dataclass(frozen=True)
class VWOption:
    """One allowed option: its value kind and bounds; ``repeat`` for options VW takes several times."""

    kind: Kind
    low: float = -math.inf
    high: float = math.inf
    choices: tuple[str, ...] = ()
    width: tuple[int, int] = (1, 1)  # namespace letters per value, for kind "namespaces"
    repeat: bool = False


name_to_option: dict[str, VWOption] = {
    # exploration
    "cb_explore_adf": VWOption("flag"),
    "epsilon": VWOption("number", 0.0, 1.0),
    "first": VWOption("count", 1, 10**6),
    "bag": VWOption("count", 1, 64),
    "greedify": VWOption("flag"),
    "first_only": VWOption("flag"),
    "cover": VWOption("count", 1, 64),
    "psi": VWOption("number", 0.0, 1e6),
    "nounif": VWOption("flag"),
    "softmax": VWOption("flag"),
    "lambda": VWOption("number", -1e6, 1e6),
    "squarecb": VWOption("flag"),
    "gamma_scale": VWOption("number", 0.0, 1e6),
    "gamma_exponent": VWOption("number", 0.0, 10.0),
    "elim": VWOption("flag"),
    "mellowness": VWOption("number", 0.0, 1e6),
    "regcb": VWOption("flag"),
    "regcbopt": VWOption("flag"),
    "cb_min_cost": VWOption("number", -1e12, 1e12),
    "cb_max_cost": VWOption("number", -1e12, 1e12),
    "rnd": VWOption("count", 1, 64),
    "rnd_alpha": VWOption("number", 0.0, 1e6),
    "rnd_invlambda": VWOption("number", 0.0, 1e6),
    "synthcover": VWOption("flag"),
    "synthcoverpsi": VWOption("number", 0.0, 1e6),
    "synthcoversize": VWOption("count", 1, 1000),
    "cb_type": VWOption("choice", choices=("dm", "dr", "ips", "mtr", "sm")),
    # learning
    "learning_rate": VWOption("number", 0.0, 1e6),
    "power_t": VWOption("number", 0.0, 1.0),
    "initial_t": VWOption("number", 0.0, 1e12),
    "decay_learning_rate": VWOption("number", 0.0, 1e6),
    "l1": VWOption("number", 0.0, 1e6),
    "l2": VWOption("number", 0.0, 1e6),
    "sgd": VWOption("flag"),
    "adaptive": VWOption("flag"),
    "normalized": VWOption("flag"),
    "invariant": VWOption("flag"),
    # features
    "bit_precision": VWOption("count", 1, 24),
    "quadratic": VWOption("namespaces", width=(2, 2), repeat=True),
    "cubic": VWOption("namespaces", width=(3, 3), repeat=True),
    "interactions": VWOption("namespaces", width=(2, 4), repeat=True),
    "ignore": VWOption("namespaces", repeat=True),
    "ignore_linear": VWOption("namespaces", repeat=True),
    "keep": VWOption("namespaces", repeat=True),
    "noconstant": VWOption("flag"),
    "leave_duplicate_interactions": VWOption("flag"),
    "hash": VWOption("choice", choices=("all", "strings")),
}
short_to_name = {"l": "learning_rate", "b": "bit_precision", "q": "quadratic"}


def _fail(message: str) -> PolicyError:
    return PolicyError(f"options.vw_args: {message}")


def _value(name: str, option: VWOption, text: str) -> str:
    """``text`` checked against the option's kind and bounds, written canonically."""
    if option.kind in ("number", "count"):
        try:
            number = float(text) if option.kind == "number" else int(text)
        except ValueError:
            kind = "a number" if option.kind == "number" else "a whole number"
            raise _fail(f"--{name} expects {kind}, got {text!r}") from None
        if not (math.isfinite(number) and option.low <= number <= option.high):
            raise _fail(f"--{name} must lie in [{option.low:g}, {option.high:g}], got {text}")
        return repr(number) if option.kind == "number" else str(number)
    if option.kind == "choice":
        if text not in option.choices:
            raise _fail(f"--{name} must be one of {', '.join(option.choices)}, got {text!r}")
        return text
    low, high = option.width
    if not (_NAMESPACE.fullmatch(text) and low <= len(text) <= high):
        letters = f"{low}" if low == high else f"{low} to {high}"
        raise _fail(f"--{name} expects {letters} namespace letters (A-Z, a-z, 0-9 or :), got {text!r}")
    return text


def _split(vw_args: str) -> list[str]:
    try:
        return shlex.split(vw_args)
    except ValueError as exc:  # an unbalanced quote
        raise _fail(f"cannot be split into options: {exc}") from None


def parse_vw_args(vw_args: object) -> list[str]:
    """The allowed VW options in ``vw_args`` as canonical tokens (``--name value``), or an error.

    Every token must be an allowed option (long ``--name``, ``--name=value``, or one of the short forms
    ``-l``, ``-b``, ``-q``, attached or not) followed by its value where it takes one. ``--cb_explore_adf``
    is required, ``--random_seed`` is refused (the policy's seed is used), at most one exploration
    algorithm may be chosen, and ``2**bit_precision`` times the ensemble size (``--bag``, ``--cover``,
    ``--rnd``) is at most ``MAX_WEIGHTS``.

    Raises
    ------
    PolicyError
        ``options.vw_args: ...`` naming the first token at fault.

    Examples
    --------
    >>> parse_vw_args("--cb_explore_adf --epsilon=0.1 -qUA")
    ['--cb_explore_adf', '--epsilon', '0.1', '--quadratic', 'UA']
    """
    if not isinstance(vw_args, str):
        raise _fail(f"expected a string, got {type(vw_args).__name__}")
    tokens = _split(vw_args)
    if "--cb_explore_adf" not in tokens:
        raise _fail(f"must contain --cb_explore_adf, got {vw_args!r}")
    name_to_values: dict[str, list[str]] = {}
    i = 0
    while i < len(tokens):
        token = tokens[i]
        attached: str | None = None
        if token.startswith("--"):
            name, equals, rest = token[2:].partition("=")
            attached = rest if equals else None
        elif token.startswith("-") and len(token) >= 2 and token[1] in short_to_name:
            name = short_to_name[token[1]]
            attached = token[2:] or None
        elif token.startswith("-"):
            raise _fail(f"{token[:2]} is not an option SendLab allows in vw_args")
        else:
            raise _fail(f"{token!r} is not an option (VW would read a bare word as a file)")
        if name == "random_seed":
            raise _fail("do not set --random_seed; pass seed to the policy instead")
        option = name_to_option.get(name)
        if option is None:
            raise _fail(f"--{name} is not an option SendLab allows in vw_args")
        if name in name_to_values and not option.repeat:
            raise _fail(f"--{name} is given twice")
        if option.kind == "flag":
            if attached is not None:
                raise _fail(f"--{name} takes no value")
            value = None
        else:
            if attached is None:
                i += 1
                if i == len(tokens):
                    raise _fail(f"--{name} needs a value")
                attached = tokens[i]
            value = _value(name, option, attached)
        name_to_values.setdefault(name, [])
        if value is not None:
            name_to_values[name].append(value)
        i += 1
    _check_combination(name_to_values)
    out: list[str] = []
    for name, values in name_to_values.items():
        out += [f"--{name}"] if not values else [t for v in values for t in (f"--{name}", v)]
    return out


def _check_combination(name_to_values: dict[str, list[str]]) -> None:
    explorers = [f"--{name}" for name in EXPLORERS if name in name_to_values]
    if len(explorers) > 1 and set(explorers) != {"--regcb", "--regcbopt"}:
        raise _fail(f"choose one exploration algorithm, got {' and '.join(explorers)}")
    bits = int(name_to_values.get("bit_precision", ["18"])[0])
    ensemble = max([int(name_to_values[n][0]) for n in ("bag", "cover", "rnd") if n in name_to_values] or [1])
    if 2**bits * ensemble > MAX_WEIGHTS:
        raise _fail(
            f"2**bit_precision x ensemble size is {2**bits * ensemble:,}, over {MAX_WEIGHTS:,} weights "
            "(each model of an ensemble holds its own weight table in memory)"
        )
