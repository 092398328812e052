"""``sendlab features``: audience features from a purchase and engagement history.

Only Typer and the CLI's own modules are imported here; the computation (pandas, scikit-learn) is
imported when a command runs.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Any

import typer

from api.cli.group import CliError
from api.settings import DEFAULT_DB

features_app = typer.Typer(
    help="Audience features (RFM, K-means segments, conversion scores) from a purchase and engagement "
    "history.",
    no_args_is_help=True,
)

#: The settings' names as the command's options (for messages).
_SETTING_TO_OPTION = {
    "as_of": "--as-of", "k": "--k", "k_range": "--k-min/--k-max", "window_days": "--window-days",
    "engagement_windows": "--engagement-windows", "purchase_type": "--purchase-type",
    "horizon_days": "--horizon-days", "folds": "--folds", "seed": "--seed", "threads": "--threads",
}


def _windows(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise CliError(
            f"--engagement-windows: give whole numbers of days, comma-separated, got {text!r}") from None


History = Annotated[str, typer.Argument(
    help="The history: a CSV or Parquet file, or a SQLAlchemy URL with --table.", show_default=False)]
AsOf = Annotated[str, typer.Option(
    "--as-of", help="The moment the features describe (ISO 8601; UTC unless a zone is given).",
    show_default=False)]
K = Annotated[int | None, typer.Option(
    "--k", help="K-means segments (default: chosen by silhouette from --k-min to --k-max).")]
KMin = Annotated[int, typer.Option(help="Smallest k tried by silhouette.")]
KMax = Annotated[int, typer.Option(help="Largest k tried by silhouette.")]
WindowDays = Annotated[int, typer.Option(help="Frequency and monetary value count this many days.")]
Windows = Annotated[str, typer.Option(
    help="Windows (days, comma-separated) in which each event type is counted.")]
PurchaseType = Annotated[str, typer.Option(help="The event type of a purchase.")]
Horizon = Annotated[int | None, typer.Option(
    help="Train a conversion model and score p_convert: a purchase within this many days.")]
Folds = Annotated[int, typer.Option(help="Cross-validation folds of the conversion model.")]
Seed = Annotated[int, typer.Option(help="Seed of K-means, samples and the model.", min=0)]
Threads = Annotated[int, typer.Option(help="Threads for K-means and the model.", min=1)]
Table = Annotated[str | None, typer.Option(help="With a database URL as HISTORY: the table.")]
MapFile = Annotated[Path | None, typer.Option("--map", help="YAML column map.")]
RecipientCol = Annotated[str | None, typer.Option(help="Column of the recipient id.")]
TimestampCol = Annotated[str | None, typer.Option(help="Column of the event time.")]
TypeCol = Annotated[str | None, typer.Option(help="Column of the event type.")]
AmountCol = Annotated[str | None, typer.Option(help="Column of the purchase amount.")]
ChunkRows = Annotated[int, typer.Option(help="Events read at a time.", min=1)]
Json = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
#: ``api.cli.db.DbOption``, named here so that the help loads no database library
Db = Annotated[str, typer.Option(
    "--db", envvar="SENDLAB_DB", help="SQLAlchemy URL of the store (SQLite or PostgreSQL).")]


def compute(
    history: History, as_of: AsOf, k: K = None, k_min: KMin = 2, k_max: KMax = 8,
    window_days: WindowDays = 365, engagement_windows: Windows = "30,90",
    purchase_type: PurchaseType = "purchase", horizon_days: Horizon = None,
    folds: Folds = 5, seed: Seed = 0, threads: Threads = 1, table: Table = None, map_file: MapFile = None,
    recipient_col: RecipientCol = None, timestamp_col: TimestampCol = None, type_col: TypeCol = None,
    amount_col: AmountCol = None, chunk_rows: ChunkRows = 1_000_000,
    out: Annotated[Path | None, typer.Option(
        help="Also write one row per recipient to this .csv or .parquet file.")] = None,
    as_json: Json = False,
) -> None:
    """Per recipient: recency, frequency, monetary value, engagement counts, RFM scores, a K-means
    segment and (with --horizon-days) p_convert, read from the history in bounded memory."""
    from api.cli.output import check_output, print_json

    if out is not None and out.suffix.lower() not in (".csv", ".parquet"):
        raise CliError(f"--out {out}: give a .csv or .parquet file")
    check_output("--out", out)
    result = _compute(**{name: value for name, value in locals().items() if name != "out"})
    if out is not None:
        frame = result.to_frame()
        if out.suffix.lower() == ".parquet":
            frame.to_parquet(out, index=False)
        else:
            frame.to_csv(out, index=False)
    if as_json:
        print_json(result.to_dict())
        return
    _print_summary(result)
    if out is not None:
        typer.echo(f"{len(result):,} recipients written to {out}")


def refresh(**options: Any) -> None:
    """Compute the features (as ``compute``) and store them as a new version of the feature table in
    --db, which specs with ``context_from: features`` read from at assignment; prints the version."""
    from api.cli.db import open_engine
    from api.cli.output import print_json
    from experiments.feature_context import store_features
    from experiments.service import utcnow

    engine = open_engine(options.pop("db"))
    result = _compute(**options)
    stored = store_features(engine, result, utcnow())
    if options["as_json"]:
        print_json(stored.to_dict())
        return
    typer.echo(f"feature version {stored.version}: {stored.recipients:,} recipients as of "
               f"{stored.as_of.isoformat()}")


def _refresh_signature() -> inspect.Signature:
    """``compute``'s options but ``--out``, and ``--db``: the options of ``refresh``."""
    parameters = [p for p in inspect.signature(compute, eval_str=True).parameters.values() if p.name != "out"]
    db = inspect.Parameter("db", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=DEFAULT_DB, annotation=Db)
    return inspect.Signature([*parameters[:-1], db, parameters[-1]], return_annotation=None)


refresh.__signature__ = _refresh_signature()  # type: ignore[attr-defined]  # what Typer reads


def _compute(
    history: str, as_of: str, k: int | None, k_min: int, k_max: int, window_days: int,
    engagement_windows: str,
    purchase_type: str, horizon_days: int | None, folds: int, seed: int, threads: int, table: str | None,
    map_file: Path | None, recipient_col: str | None, timestamp_col: str | None, type_col: str | None,
    amount_col: str | None, chunk_rows: int, as_json: bool, **_: object,
):  # noqa: ANN202 - a FeatureSet, imported lazily
    """The history read with the options' column map and the features computed; bad input is one line."""
    from api.cli.offline import progress_bars
    from experiments.errors import InvalidInput
    from experiments.features import FeatureSettings, compute_features
    from simulations.column_maps import ColumnRolesError, column_roles, load_column_fields
    from simulations.history import HistoryColumns, read_history, read_sql_history

    fields = load_column_fields(map_file, HistoryColumns) if map_file else {}
    given = {"recipient_id": recipient_col, "timestamp": timestamp_col, "type": type_col,
             "amount": amount_col}
    fields.update({role: column for role, column in given.items() if column is not None})
    try:
        columns = column_roles(HistoryColumns, fields)
    except ColumnRolesError as exc:
        problems = (message.removeprefix("Value error, ") for _, message in exc.problems)
        raise CliError("column map: " + "; ".join(problems)) from None
    is_url = "://" in history
    if is_url != (table is not None):
        raise CliError("--table: give it with a database URL as HISTORY, and only then")
    try:
        settings = FeatureSettings(
            as_of=as_of, window_days=window_days, engagement_windows=_windows(engagement_windows),
            purchase_type=purchase_type, k=k, k_range=(k_min, k_max), horizon_days=horizon_days,
            folds=folds, seed=seed, threads=threads,
        )
        reading = {"purchase_type": purchase_type, "chunk_rows": chunk_rows}
        if table is not None:
            events = read_sql_history(history, table, columns, **reading)
        else:
            events = read_history(history, columns, **reading)
        with progress_bars(hidden=as_json) as on_progress:
            return compute_features(events, settings,
                                    on_progress=lambda read: on_progress("events", read, None))  # type: ignore[arg-type]
    except InvalidInput as exc:
        option = "HISTORY" if exc.field == "events" else _SETTING_TO_OPTION.get(exc.field, exc.field)
        raise CliError(f"{option}: {exc.reason}") from None


def _print_summary(result) -> None:  # noqa: ANN001 - a FeatureSet, imported lazily
    from api.cli.output import print_table

    s, seg = result.settings, result.segmentation
    events = result.events
    typer.echo(f"{len(result):,} recipients as of {s.as_of.isoformat()}; events: {events.read:,} read, "
               f"{events.used:,} used, {events.after_as_of:,} after as_of")
    chosen = "given" if seg.chosen_by == "given" else f"chosen by silhouette {seg.silhouette[seg.k]:.3f}"
    typer.echo(f"segments: k = {seg.k} ({chosen})")
    print_table(["segment", "size", *seg.features],
                [[x.segment, x.size, *x.centre.values()] for x in seg.segments])
    if result.scores is not None:
        r = result.scores.report
        typer.echo(f"conversion model (a purchase within {r.horizon_days} days): {r.training_rows:,} "
                   f"recipients as of {r.split_at.isoformat()}, {r.positives:,} converted; "
                   f"{r.folds}-fold AUC {r.auc:.3f}, log loss {r.log_loss:.4f} "
                   f"(base rate {r.base_log_loss:.4f})")
        print_table(["feature", "importance (AUC drop)", "sd"],
                    [[f.feature, f.mean, f.sd] for f in r.importance])


features_app.command("compute")(compute)
features_app.command("refresh")(refresh)
