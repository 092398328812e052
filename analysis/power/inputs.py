"""Checks and shared settings for the planning functions (power, sample size, duration).

Every check raises :class:`PowerInputError` with one sentence that names the field and the problem,
so the command line and the HTTP layer can show it as it is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

from analysis.errors import PowerInputError

Alternative = Literal["two-sided", "one-sided"]
Correction = Literal["bonferroni", "none"]


#: Largest number of arms a plan takes (a test of more variants than this is not an email test).
MAX_ARMS = 1000
#: Largest sample per arm the planning functions answer for (the solvers stop there too).
MAX_N_PER_ARM = 10**15
#: The largest treatment-to-control size ratio (and 1 over the smallest) a plan takes.
MAX_RATIO = 1000.0


def check_finite(name: str, value: float) -> float:
    """Return ``value`` as a float, or raise when it is not a finite number."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise PowerInputError(f"{name} must be a number; got {value!r}.") from None
    if not math.isfinite(number):
        raise PowerInputError(f"{name} must be a finite number; got {value!r}.")
    return number


def check_open_unit(name: str, value: float) -> float:
    """A number strictly between 0 and 1 (a rate, alpha or power)."""
    number = check_finite(name, value)
    if not 0.0 < number < 1.0:
        raise PowerInputError(f"{name} must be strictly between 0 and 1; got {value!r}.")
    return number


def check_positive(name: str, value: float) -> float:
    """A finite number above zero."""
    number = check_finite(name, value)
    if number <= 0.0:
        raise PowerInputError(f"{name} must be greater than 0; got {value!r}.")
    return number


def check_nonzero(name: str, value: float) -> float:
    """A finite number other than zero (an effect to detect)."""
    number = check_finite(name, value)
    if number == 0.0:
        raise PowerInputError(f"{name} must not be zero: a zero effect cannot be detected.")
    return number


def check_share(name: str, value: float) -> float:
    """A share in (0, 1]."""
    number = check_finite(name, value)
    if not 0.0 < number <= 1.0:
        raise PowerInputError(f"{name} must be in (0, 1]; got {value!r}.")
    return number


def check_count(name: str, value: int, minimum: int, maximum: int | None = None) -> int:
    """An integer no smaller than ``minimum`` (and no larger than ``maximum`` when given)."""
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or (isinstance(value, float) and not value.is_integer())):
        raise PowerInputError(f"{name} must be a whole number; got {value!r}.")
    if int(value) < minimum:
        raise PowerInputError(f"{name} must be at least {minimum}; got {value!r}.")
    if maximum is not None and int(value) > maximum:
        raise PowerInputError(f"{name} must be at most {maximum:,}; got {value!r}.")
    return int(value)


def check_n_per_arm(value: float, at_least: float | None = None) -> float:
    """A control-arm size: above 0 (or at least ``at_least``) and at most :data:`MAX_N_PER_ARM`."""
    number = check_finite("n_per_arm", value)
    if at_least is None and number <= 0.0:
        raise PowerInputError(f"n_per_arm must be greater than 0; got {value!r}.")
    if at_least is not None and number < at_least:
        raise PowerInputError(f"n_per_arm must be at least {at_least:g}; got {value!r}.")
    if number > MAX_N_PER_ARM:
        raise PowerInputError(f"n_per_arm must be at most 1e15; got {value!r}.")
    return number


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    """One of a few allowed strings."""
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise PowerInputError(f"{name} must be one of {allowed}; got {value!r}.")
    return value


def check_power(value: float) -> float:
    """The requested power: strictly between 0 and 1 (a power of 1 needs an infinite sample)."""
    number = check_finite("power", value)
    if number >= 1.0:
        raise PowerInputError(
            f"power must be below 1 (a power of 1 needs an infinite sample); got {value!r}."
        )
    if number <= 0.0:
        raise PowerInputError(f"power must be greater than 0; got {value!r}.")
    return number


def comparison_alpha(alpha: float, arms: int, correction: Correction) -> float:
    """The significance level of each treatment-versus-control comparison.

    With ``arms`` arms (control included) there are ``arms - 1`` comparisons against the control;
    Bonferroni divides ``alpha`` among them so the family-wise error stays at most ``alpha``.
    """
    check_choice("correction", correction, ("bonferroni", "none"))
    return alpha / (arms - 1) if correction == "bonferroni" else alpha


def describe_correction(arms: int, correction: Correction, alpha: float, alpha_each: float) -> str:
    """A sentence fragment stating how several arms are corrected."""
    if arms == 2:
        return "one comparison, so no multiple-comparison correction"
    if correction == "none":
        return f"{arms - 1} comparisons against the control, each at alpha {alpha:g} (no correction)"
    return (
        f"{arms - 1} comparisons against the control, Bonferroni-corrected to alpha "
        f"{alpha:g}/{arms - 1} = {alpha_each:.4g} each"
    )


def round_up(n_exact: float) -> int:
    """Round a solved sample size up to whole recipients.

    The solvers return values such as ``63.99999999997`` for an exact ``64``; the value is rounded to
    six decimals first so floating-point noise does not add a recipient.
    """
    return int(math.ceil(round(n_exact, 6)))


def arm_sizes(n_exact: float, arms: int, ratio: float) -> tuple[int, ...]:
    """Whole-recipient sizes of every arm: the control first, then each treatment at ``ratio`` times it.

    Each size is the solved (fractional) size rounded up, so every arm has at least the sample the
    power calculation asked for.
    """
    if not n_exact <= MAX_N_PER_ARM:
        raise PowerInputError("mde is too small: the sample size would exceed 1e15 per arm.")
    if not ratio * n_exact <= MAX_N_PER_ARM:
        raise PowerInputError("mde is too small: a treatment arm would exceed 1e15.")
    control = round_up(n_exact)
    treatment = round_up(ratio * n_exact)
    return (control,) + (treatment,) * (arms - 1)


def check_plan_options(
    alpha: float,
    power: float,
    alternative: str,
    arms: int,
    ratio: float,
    correction: str,
) -> float:
    """Check the options every sample-size question shares; return the per-comparison alpha."""
    alpha = check_open_unit("alpha", alpha)
    check_power(power)
    check_choice("alternative", alternative, ("two-sided", "one-sided"))
    arms = check_count("arms", arms, 2, MAX_ARMS)
    if not 1.0 / MAX_RATIO <= check_positive("ratio", ratio) <= MAX_RATIO:
        raise PowerInputError(f"ratio must lie in [0.001, 1000] (a treatment arm at most 1,000 times the "
                              f"control's size, or a thousandth of it); got {ratio!r}.")
    check_choice("correction", correction, ("bonferroni", "none"))
    return comparison_alpha(alpha, arms, correction)  # type: ignore[arg-type]


def check_power_above_alpha(power: float, alpha_each: float) -> float:
    """The requested power must exceed the per-comparison alpha: a test rejects that often with no effect."""
    if power <= alpha_each:
        raise PowerInputError(
            f"power must be greater than the alpha of each comparison ({alpha_each:.4g}), which a test "
            f"reaches with no effect at all; got {power!r}."
        )
    return power


def check_daily(daily: int | None, traffic_share: float) -> None:
    """Check the traffic settings used to turn a sample size into days."""
    if daily is not None:
        check_count("daily", daily, 1)
    check_share("traffic_share", traffic_share)


def check_rates(rates: Sequence[float], most: int, all_equal: str) -> list[float]:
    """The true rate of each arm, control first: at least 2 and at most ``most``, each in (0, 1), not all
    equal (``all_equal`` says why that matters to the caller)."""
    try:
        values = [float(r) for r in rates]
    except (TypeError, ValueError):
        raise PowerInputError("rates must be a flat sequence of numbers, control first.") from None
    if len(values) < 2:
        raise PowerInputError("rates must be a flat sequence of at least 2 rates, control first.")
    if len(values) > most:
        raise PowerInputError(f"rates must hold at most {most} arms; got {len(values)}.")
    if not all(0.0 < v < 1.0 for v in values):
        raise PowerInputError("rates must all be strictly between 0 and 1.")
    if all(v == values[0] for v in values):
        raise PowerInputError(f"rates are all equal, so {all_equal}.")
    return values


def check_random(rng: Any, seed: int | None) -> tuple[Any, int | None]:
    """The generator of a simulation and the seed to report: ``rng`` as given, or one made from ``seed``
    (exactly one of them)."""
    import numpy as np

    if seed is not None:
        if rng is not None:
            raise PowerInputError("rng and seed were both given; give one of them.", field="seed")
        return np.random.default_rng(check_count("seed", seed, 0)), int(seed)
    if not isinstance(rng, np.random.Generator):
        raise PowerInputError("rng must be a numpy.random.Generator, for example np.random.default_rng(7).")
    return rng, None
