"""``sendlab outcomes``: post a file of outcome events (idempotent by event id)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from api.cli.db import DEFAULT, DbOption, open_service
from api.cli.group import CliError
from api.cli.output import print_fields, print_json
from api.cli.records import iter_records, row_error
from api.models.outcomes import OutcomeEventIn
from experiments.errors import InvalidInput
from experiments.limits import CLI_FILE_BATCH
from experiments.models import OutcomeEvent
from experiments.service import check_outcome_events

TEXT_COLUMNS = ("event_id", "decision_id", "type", "user_agent")  # a CSV cell "123" stays text


def _event_batches(file: Path) -> Iterator[tuple[int, list[OutcomeEvent]]]:
    """``(row number of the first, events)`` for consecutive batches of the file's rows, each row checked
    by the model of ``POST /v1/outcomes``."""
    batch: list[OutcomeEvent] = []
    first = 1
    for number, row in iter_records(file):
        row = {k: (str(v) if k in TEXT_COLUMNS and v is not None else v) for k, v in row.items()}
        try:
            e = OutcomeEventIn.model_validate(row)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(p) for p in error["loc"])
            raise CliError(f"{file} row {number}: {where}: {error['msg']}") from exc
        batch.append(
            OutcomeEvent(e.event_id, e.decision_id, e.type, e.value, e.timestamp, e.machine, e.user_agent)
        )
        if len(batch) == CLI_FILE_BATCH:
            yield first, batch
            batch, first = [], number + 1
    if batch:
        yield first, batch


def _check_events(file: Path) -> int:
    """Check every row as ``POST /v1/outcomes`` and the service would, storing nothing; the row count."""
    total = 0
    for first, batch in _event_batches(file):
        try:
            check_outcome_events(batch)
        except InvalidInput as exc:
            raise row_error(file, first, exc, "events") from exc
        total += len(batch)
    return total


def outcomes(
    file: Annotated[Path, typer.Argument(help="Events: .csv, .jsonl or .json rows of event_id, decision_id, "
                                              "type and optional value, timestamp, machine (true for "
                                              "a bot's open or click), user_agent.")],
    db: DbOption = DEFAULT,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """Record outcome events from a file; a repeated event id counts once. Every row is checked before
    any is recorded: a bad row records nothing."""
    total = _check_events(file)
    service = open_service(db)
    totals = {"accepted": 0, "duplicates": 0, "orphans": 0, "erased": 0}
    with typer.progressbar(length=total, label="recording", hidden=as_json) as bar:
        for _, batch in _event_batches(file):
            counts = service.record_outcomes(batch)
            totals["accepted"] += counts.accepted
            totals["duplicates"] += counts.duplicates
            totals["orphans"] += counts.orphans
            totals["erased"] += counts.erased
            bar.update(len(batch))
    if as_json:
        print_json(totals)
    else:
        print_fields(list(totals.items()))
