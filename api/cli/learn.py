"""``sendlab learn KEY [--watch]``: learning as its own process.

Without ``--watch`` it learns once, at once (as ``POST /v1/experiments/{key}/learn``), and prints what
it did. With ``--watch`` it checks every ``--poll-seconds`` whether the spec's ``design.update`` says a
run is due (:class:`experiments.learner.ScheduledLearner`) and learns then, printing each run, until
interrupted (Ctrl-C ends it cleanly, after the run in progress). Run the servers with the in-server
learner off (``SENDLAB_LEARNER=off`` or ``sendlab serve --no-learner``) so that learning is not done
twice over.
"""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer

from api.cli.db import DEFAULT, DbOption, open_service
from api.cli.group import CliError, explain
from api.cli.output import print_json
from experiments.errors import Conflict
from experiments.learner import LearnRun, ScheduledLearner, has_schedule

Key = Annotated[str, typer.Argument(help="The experiment's key.")]


def describe_run(run: LearnRun) -> str:
    """One line for a learning run."""
    if run.version == run.version_before:
        return f"{run.key}: nothing new to learn (policy version {run.version})"
    return (
        f"{run.key}: policy version {run.version_before} -> {run.version}, learned "
        f"{run.decisions} decisions and {run.outcomes} outcomes"
    )


def _show(run: LearnRun, as_json: bool, *, stream: bool = False) -> None:
    """The run as a line of text, or as JSON (with ``stream``, compact on one line: JSON lines)."""
    if as_json and stream:
        typer.echo(json.dumps(run.to_dict()))
    elif as_json:
        print_json(run.to_dict())
    else:
        typer.echo(describe_run(run))


def learn(
    key: Key,
    watch: Annotated[
        bool, typer.Option("--watch", help="Keep learning whenever the spec's update schedule says, until "
                           "interrupted.")
    ] = False,
    poll_seconds: Annotated[
        float, typer.Option("--poll-seconds", help="With --watch: pause between two checks of the schedule.",
                            min=0.05, max=3600)
    ] = 1.0,
    max_checks: Annotated[
        int | None, typer.Option("--max-checks", hidden=True, min=1,
                                 help="With --watch: stop after this many checks (for tests).")
    ] = None,
    db: DbOption = DEFAULT,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the run as JSON (--watch: one object a line).")
    ] = False,
) -> None:
    """Learn an adaptive experiment's policy now, or with --watch whenever its update schedule says."""
    service = open_service(db)
    learner = ScheduledLearner(service)
    if not watch:
        _show(learner.learn(key), as_json)
        return
    info = service.get(key)
    if info.spec.design.type not in ("bandit", "contextual"):
        raise Conflict(f"experiment {key!r} is a {info.spec.design.type} design: there is no policy to learn")
    if not has_schedule(info.spec.design.update):
        raise CliError(f"--watch: experiment {key!r} has no design.update.every_outcomes or every_seconds: "
                       "nothing schedules its learning (run `sendlab learn KEY` when you want it)")
    _watch(learner, key, poll_seconds, max_checks, as_json)


def _watch(learner: ScheduledLearner, key: str, poll_seconds: float, max_checks: int | None,
           as_json: bool) -> None:
    checks = 0
    try:
        while True:
            try:
                run = learner.check_key(key)
            except Exception as exc:  # a watcher outlives a failed run, as the in-server learner does
                reason = explain(exc)
                if reason is None:
                    raise
                typer.echo(f"error: {reason}", err=True)
                run = None
            if run is not None:
                _show(run, as_json, stream=True)
            checks += 1
            if max_checks is not None and checks >= max_checks:
                return
            time.sleep(poll_seconds)
    except KeyboardInterrupt:
        typer.echo(f"stopped watching {key}", err=True)
