"""``sendlab analyze``: the drift monitor's table (the ``drift`` block of the results)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import typer

from api.cli.output import print_table


def print_drift(block: Mapping[str, Any]) -> None:
    """Each judged day's predicted and earned reward, residual and CUSUM, then the verdict (and, for a
    fixed split, each arm's)."""
    typer.echo("")
    points = block["points"]
    if points:
        print_table(
            ["day", "policy version", "decisions", "predicted", "observed", "residual", "CUSUM +", "CUSUM -",
             "alarm"],
            [[p["day"], p["policy_version"], p["decisions"],
              *[round(p[name], 2) for name in ("predicted", "observed", "residual", "upper", "lower")],
              "ALARM" if p["alarm"] else ""] for p in points],
        )
    verdict = (f"ALERT from day {block['first_alarm_day']}" if block["alert"]
               else f"no alert over {len(points)} judged days")
    typer.echo(f"drift: {verdict} ({block['detector']}, threshold {block['threshold']:.2f}, "
               f"false alarm rate {block['false_alarm_rate']:.0%} over {block['horizon']} days)")
    for arm in block.get("arms", []):
        label = ", ".join(f"{slot}={variant}" for slot, variant in arm["variants"].items())
        arm_verdict = (f"ALERT from day {arm['first_alarm_day']}" if arm["alert"]
                       else f"no alert over {len(arm['points'])} judged days")
        typer.echo(f"  {label}: {arm_verdict} (threshold {arm['threshold']:.2f})")
