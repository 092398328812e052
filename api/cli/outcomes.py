"""``sendlab outcomes``: post a file of outcome events (idempotent by event id)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from api.cli.db import DEFAULT, DbOption, open_service
from api.cli.group import CliError
from api.cli.output import print_fields, print_json
from api.cli.records import chunks, read_records
from api.models.outcomes import OutcomeEventIn
from experiments.errors import InvalidInput
from experiments.models import OutcomeEvent
from experiments.service import check_outcome_events

BATCH = 10_000
TEXT_COLUMNS = ("event_id", "decision_id", "type", "user_agent")  # a CSV cell "123" stays text


def outcomes(
    file: Annotated[Path, typer.Argument(help="Events: .csv, .jsonl or .json rows of event_id, decision_id, "
                                              "type and optional value, timestamp, machine (true for "
                                              "a bot's open or click), user_agent.")],
    db: DbOption = DEFAULT,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """Record outcome events from a file; a repeated event id counts once."""
    events = []
    for i, row in enumerate(read_records(file)):
        row = {k: (str(v) if k in TEXT_COLUMNS and v is not None else v) for k, v in row.items()}
        try:
            e = OutcomeEventIn.model_validate(row)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise CliError(f"{file}: row {i + 1}: {where}: {first['msg']}") from exc
        events.append(
            OutcomeEvent(e.event_id, e.decision_id, e.type, e.value, e.timestamp, e.machine, e.user_agent)
        )
    try:  # as the service checks them, before any is recorded, each problem named by its row
        check_outcome_events(events)
    except InvalidInput as exc:
        found = re.fullmatch(r"events\[(\d+)\]\.?(.*)", exc.field)
        if found is None:
            raise
        where = f"{found[2]}: " if found[2] else ""
        raise CliError(f"{file}: row {int(found[1]) + 1}: {where}{exc.reason}") from exc
    service = open_service(db)
    totals = {"accepted": 0, "duplicates": 0, "orphans": 0}
    with typer.progressbar(length=len(events), label="recording", hidden=as_json) as bar:
        for part in chunks(events, BATCH):
            counts = service.record_outcomes(list(part))
            totals["accepted"] += counts.accepted
            totals["duplicates"] += counts.duplicates
            totals["orphans"] += counts.orphans
            bar.update(len(part))
    if as_json:
        print_json(totals)
    else:
        print_fields(list(totals.items()))
