"""``sendlab recipients``: everything stored about one recipient, and its erasure."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from api.cli.db import DEFAULT, DbOption, open_engine
from api.cli.group import CliError
from api.cli.output import print_fields, print_json, print_table

recipients_app = typer.Typer(help="Show or erase what is stored about one recipient.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
RecipientArgument = Annotated[str, typer.Argument(help="The recipient's id.", show_default=False)]


@recipients_app.command("show")
def show(
    recipient_id: RecipientArgument,
    db: DbOption = DEFAULT,
    as_json: JsonOption = False,
) -> None:
    """Every decision about the recipient, with its stored context and outcomes."""
    from experiments.recipients import read_recipient

    data = read_recipient(open_engine(db), recipient_id)
    if as_json:
        print_json(data)
        return
    if not data.decisions and not data.features:
        typer.echo(f"nothing is stored about {recipient_id!r}")
        return
    if data.decisions:
        print_table(
            ["decision", "experiment", "version", "variants", "reason", "context", "feature version",
             "outcomes"],
            [[d.decision_id, d.experiment, d.version, d.variants, d.reason, d.context, d.feature_version,
              ", ".join(f"{o.type}" + (f"={o.value:g}" if o.value is not None else "") for o in d.outcomes)]
             for d in data.decisions],
        )
    if data.features:
        print_table(["feature version", "attributes"], [[f.version, f.attributes] for f in data.features])


@recipients_app.command("erase")
def erase(
    recipient_id: RecipientArgument,
    db: DbOption = DEFAULT,
    as_json: JsonOption = False,
) -> None:
    """Erase the recipient: contexts dropped, the id replaced by an irreversible token keyed by
    SENDLAB_ERASURE_SECRET; decisions and outcomes kept as counts, so results are unchanged."""
    from experiments.recipients import erase_recipient

    secret = os.environ.get("SENDLAB_ERASURE_SECRET", "")
    if not secret:
        raise CliError("SENDLAB_ERASURE_SECRET: set the server's erasure secret (16 bytes or more) to erase")
    erasure = erase_recipient(open_engine(db), recipient_id, secret.encode())
    if as_json:
        print_json(erasure)
    else:
        print_fields([("decisions erased", erasure.decisions), ("outcomes kept as counts", erasure.outcomes),
                      ("feature rows deleted", erasure.features)])
