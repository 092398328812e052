"""``sendlab demo``: the whole loop on the example experiment, watchable in a terminal.

Creates ``api/examples/spring-sale.yaml``, then for each round (one simulated send every four days):
assigns a batch of simulated recipients, posts their simulated outcomes, and learns. The service's
clock is simulated too, so outcomes fall inside the reward window and learning sees them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from api.cli.adaptive_output import print_adaptive
from api.cli.db import DEFAULT, DbOption, open_service
from api.cli.experiments import read_spec
from api.cli.output import check_output, print_json, print_table
from api.demo_world import draw_contexts, simulate_outcomes
from api.report import write_report
from api.results import comparison_rows, results_to_dict
from experiments.adaptive_block import adaptive_json
from experiments.models import OutcomeEvent

EXAMPLE_SPEC = Path(__file__).resolve().parent.parent / "examples" / "spring-sale.yaml"
ROUND_GAP = timedelta(days=4)  # longer than the 72-hour reward window: each round's outcomes are complete


@dataclass
class SimulatedClock:
    """A clock the demo moves forward by hand."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now


def _events(decisions: list[Any], outcomes: list[Any], sent_at: datetime) -> list[OutcomeEvent]:
    events = []
    for d, o in zip(decisions, outcomes, strict=True):
        if o.clicked:
            events.append(OutcomeEvent(f"{d.decision_id}:click", d.decision_id, "click", None,
                                       sent_at + timedelta(hours=2)))
        if o.converted:
            events.append(OutcomeEvent(f"{d.decision_id}:conversion", d.decision_id, "conversion", None,
                                       sent_at + timedelta(hours=3)))
            events.append(OutcomeEvent(f"{d.decision_id}:revenue", d.decision_id, "revenue", o.revenue,
                                       sent_at + timedelta(hours=3)))
        if o.unsubscribed:
            events.append(OutcomeEvent(f"{d.decision_id}:unsubscribe", d.decision_id, "unsubscribe", None,
                                       sent_at + timedelta(hours=5)))
    return events


def demo(
    db: DbOption = DEFAULT,
    html: Annotated[Path | None, typer.Option(help="Write the HTML results report here.")] = None,
    recipients: Annotated[int, typer.Option(help="Recipients per simulated send.", min=10)] = 4000,
    rounds: Annotated[int, typer.Option(help="Simulated sends, four days apart.", min=1)] = 5,
    seed: Annotated[int, typer.Option(help="Seed of the simulated audience and of the policy.")] = 7,
    spec_file: Annotated[Path, typer.Option("--spec", help="The experiment to run.")] = EXAMPLE_SPEC,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Run the example experiment end to end: create, send, collect outcomes, learn, analyse."""
    check_output("--html", html)
    rng = np.random.default_rng(seed)
    clock = SimulatedClock(datetime.now(UTC) - rounds * ROUND_GAP)
    service = open_service(db, seed=seed, clock=clock)
    spec = read_spec(spec_file)
    info = service.create(spec)
    say = (lambda *_: None) if as_json else typer.echo
    say(f"experiment {info.key!r} version {info.version} ({spec.design.type}, {spec.design.policy}) "
        f"on {db}")
    for warning in info.warnings:
        say(f"warning: {warning}")
    log: list[list[Any]] = []
    with typer.progressbar(range(rounds), label="simulated sends", hidden=as_json) as bar:
        for r in bar:
            sent_at = clock.now
            contexts = draw_contexts(rng, recipients)
            ids = [f"demo-{seed}-{r}-{i}" for i in range(recipients)]
            decisions = service.assign_batch(info.key, list(zip(ids, contexts, strict=True)))
            chosen = [{slot: v.id for slot, v in d.variants.items()} for d in decisions]
            outcomes = simulate_outcomes(rng, contexts, chosen)
            clock.now = sent_at + timedelta(hours=6)
            counts = service.record_outcomes(_events(decisions, outcomes, sent_at))
            clock.now = sent_at + ROUND_GAP
            version = service.learn(info.key)
            clicks = sum(o.clicked for o in outcomes)
            top, _ = Counter(" + ".join(c.values()) for c in chosen).most_common(1)[0]
            rate = f"{clicks / recipients:.2%}"
            log.append([r + 1, recipients, clicks, rate, counts.accepted, version, top])
    results = service.results(info.key, seed=seed, blocks=True)
    summary, adaptive = results.summary, results.adaptive
    if html is not None and not results.analyses:
        html = None  # nothing to chart yet; the skipped slots say why
    if html is not None:
        write_report(results, html, title=f"SendLab demo: {info.key}", adaptive=adaptive)
    if as_json:
        answer = results_to_dict(results, detail=False)
        answer.update(adaptive_json(adaptive, summary, answer))
        print_json({"rounds": [dict(zip(["round", "recipients", "clicks", "click_rate", "events",
                                          "policy_version", "most_sent"], row, strict=True)) for row in log],
                    "results": answer, "html": str(html) if html else None})
        return
    typer.echo("")
    print_table(["send", "recipients", "clicks", "click rate", "events", "policy", "most sent"], log)
    typer.echo("")
    if adaptive is not None:
        print_adaptive(adaptive, 0.05)
    else:
        print_table(["slot", "comparison", "metric", "lift", "95% CI", "p (adj.)", "P(beat control)"],
                    comparison_rows(results))
    for a in [] if adaptive is not None else results.analyses:
        typer.echo(f"{a.slot}: {a.decision.verdict} ({a.decision.reason})")
    for slot, why in results.skipped.items():
        typer.echo(f"{slot}: not analysed, {why}")
    if html is not None:
        typer.echo(f"report written to {html}")

