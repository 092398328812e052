"""``sendlab db``: maintenance of the store (``upgrade``: schema migrations; ``prune``: retention of stored
contexts and feature versions)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from api.cli.db import DEFAULT, DbOption, engine_for, open_engine
from api.cli.group import CliError
from api.cli.output import print_fields, print_json
from api.settings import SettingsError, settings_from_env

db_app = typer.Typer(help="Maintain the store: upgrade its schema, drop contexts and feature versions past "
                     "the retention period.",
                     no_args_is_help=True)


def _days(option: float | None) -> float:
    """``--days``, else the configured retention period (``SENDLAB_RETENTION_DAYS`` or the config file)."""
    if option is not None:
        return option
    try:
        days = settings_from_env().retention_days
    except SettingsError as exc:
        raise CliError(str(exc)) from None
    if days is None:
        raise CliError("--days: no retention period: give --days or set SENDLAB_RETENTION_DAYS")
    return days


@db_app.command("prune")
def prune(
    days: Annotated[float | None, typer.Option(
        "--days", help="Drop the contexts of decisions older than this many days (default: "
        "SENDLAB_RETENTION_DAYS).", show_default=False)] = None,
    db: DbOption = DEFAULT,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Drop the stored contexts of decisions older than the retention period, and the feature versions
    stored before it but the latest; statistics stay."""
    from experiments.retention import prune_store, retention_cutoff

    period = _days(days)
    try:
        cutoff = retention_cutoff(datetime.now(UTC), period)
    except ValueError as exc:
        raise CliError(f"--days: {exc}") from None
    pruned = prune_store(open_engine(db), cutoff)
    result = {"before": cutoff.isoformat(), "decisions": pruned.decisions,
              "feature_versions": pruned.feature_versions}
    if as_json:
        print_json(result)
    else:
        print_fields([("contexts dropped before", result["before"]), ("decisions", pruned.decisions),
                      ("feature versions deleted", pruned.feature_versions)])


@db_app.command("upgrade")
def upgrade(
    db: DbOption = DEFAULT,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Bring the store's schema to this SendLab's newest migration (a store made before migrations
    included); ``sendlab serve`` does the same at start."""
    from experiments.store import upgrade_store

    result = upgrade_store(engine_for(db))
    answer = {"before": result.before, "after": result.after, "changed": result.changed,
              "made_before_migrations": result.before is None and result.tables_before}
    if as_json:
        print_json(answer)
    elif not result.changed:
        typer.echo(f"already at revision {result.after}")
    else:
        print_fields([("from", result.before or ("before migrations" if result.tables_before else "empty")),
                      ("to", result.after)])
