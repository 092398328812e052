"""The options every ``sendlab power rate | mean`` question shares, declared once.

Typer reads a command's options from its signature; :func:`with_question_options` appends the fields of
:class:`QuestionOptions` to a command's own options and hands them to it as one ``options`` value.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, get_type_hints

import typer


def parse_whole_number(text: str) -> int:
    """A count of recipients written as an integer or as an integral number (``20000``, ``2e4``,
    ``1e15``, ``1000.0``), as the HTTP routes take it; ``2.5`` is refused."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not number.is_integer():
        raise typer.BadParameter(f"expected a whole number, such as 20000 or 2e4; got {text!r}")
    return int(number)


Mde = Annotated[float | None, typer.Option(
    help="Minimum detectable effect (negative plans for a decrease); with --n: the effect whose power "
    "is asked.")]
N = Annotated[int | None, typer.Option(
    "--n", "--n-per-arm", parser=parse_whole_number, help="Recipients in the control arm (2e4 is 20,000): "
    "alone, answers the minimum detectable effect; with --mde, the power.")]
Relative = Annotated[bool, typer.Option("--relative", help="Read --mde as a share of the baseline.")]
Alpha = Annotated[float, typer.Option(help="Family-wise significance level.")]
Power = Annotated[float, typer.Option(
    help="Probability of detecting the effect (with --n and --mde: the target marked on the curve).")]
Arms = Annotated[int, typer.Option(help="Number of arms, the control included.")]
Ratio = Annotated[float, typer.Option(help="Size of each treatment arm relative to the control.")]
Daily = Annotated[int | None, typer.Option(parser=parse_whole_number,
                                           help="Emails sent per day: prints the days needed.")]
Share = Annotated[float, typer.Option(help="Share of the daily volume in the test.")]
Alternative = Annotated[str, typer.Option(help="two-sided or one-sided.")]
Correction = Annotated[str, typer.Option(help="bonferroni or none (with more than two arms).")]
Direction = Annotated[str | None, typer.Option(
    help="With --n alone: increase (default) or decrease of the metric.")]
Curve = Annotated[bool, typer.Option("--curve", help="Add the power curve (a table; over n, or over "
                                     "the effect, drawn for increases, with --n alone).")]
Points = Annotated[int, typer.Option(help="Points on the power curve.")]
Html = Annotated[Path | None, typer.Option(help="Write the power curve as an offline HTML chart here "
                                           "(implies --curve).")]
Json = Annotated[bool, typer.Option("--json", help="Print the full answer as JSON.")]


@dataclasses.dataclass(frozen=True)
class QuestionOptions:
    """What a ``rate`` or ``mean`` question shares: the effect or the size asked about, the test's
    settings, the curve, and the output."""

    mde: Mde = None
    n: N = None
    relative: Relative = False
    alpha: Alpha = 0.05
    power: Power = 0.8
    arms: Arms = 2
    ratio: Ratio = 1.0
    daily: Daily = None
    traffic_share: Share = 1.0
    alternative: Alternative = "two-sided"
    correction: Correction = "bonferroni"
    direction: Direction = None
    curve: Curve = False
    points: Points = 25
    html: Html = None
    as_json: Json = False

    def test_settings(self, method: str) -> dict[str, Any]:
        """The settings of the test, as the solvers and the curves take them."""
        return {"alpha": self.alpha, "alternative": self.alternative, "arms": self.arms, "ratio": self.ratio,
                "method": method, "correction": self.correction}


def with_question_options(command: Callable[..., None]) -> Callable[..., None]:
    """``command(options, **own)`` as a Typer command taking its own options and those of
    :class:`QuestionOptions` (after its own, in the help)."""
    hints = get_type_hints(QuestionOptions, include_extras=True)
    shared = [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default,
                                annotation=hints[f.name]) for f in dataclasses.fields(QuestionOptions)]
    own = list(inspect.signature(command, eval_str=True).parameters.values())[1:]

    @functools.wraps(command)
    def run(**given: Any) -> None:
        names = {p.name for p in shared}
        options = QuestionOptions(**{k: v for k, v in given.items() if k in names})
        command(options, **{k: v for k, v in given.items() if k not in names})

    run.__annotations__ = {}  # Typer reads the annotations from the signature below
    run.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own] + shared)
    return run
