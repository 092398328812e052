"""``sendlab features``: audience features from a purchase and engagement history.

Only Typer and the CLI's own modules are imported here; the computation (pandas, scikit-learn) is
imported when a command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli.group import CliError

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


def compute(
    history: Annotated[str, typer.Argument(
        help="The history: a CSV or Parquet file, or a SQLAlchemy URL with --table.", show_default=False)],
    as_of: Annotated[str, typer.Option(
        "--as-of", help="The moment the features describe (ISO 8601; UTC unless a zone is given).",
        show_default=False)],
    k: Annotated[int | None, typer.Option(
        "--k", help="K-means segments (default: chosen by silhouette from --k-min to --k-max).")] = None,
    k_min: Annotated[int, typer.Option(help="Smallest k tried by silhouette.")] = 2,
    k_max: Annotated[int, typer.Option(help="Largest k tried by silhouette.")] = 8,
    window_days: Annotated[int, typer.Option(
        help="Frequency and monetary value count this many days.")] = 365,
    engagement_windows: Annotated[str, typer.Option(
        help="Windows (days, comma-separated) in which each event type is counted.")] = "30,90",
    purchase_type: Annotated[str, typer.Option(help="The event type of a purchase.")] = "purchase",
    horizon_days: Annotated[int | None, typer.Option(
        help="Train a conversion model and score p_convert: a purchase within this many days.")] = None,
    folds: Annotated[int, typer.Option(help="Cross-validation folds of the conversion model.")] = 5,
    seed: Annotated[int, typer.Option(help="Seed of K-means, samples and the model.", min=0)] = 0,
    threads: Annotated[int, typer.Option(help="Threads for K-means and the model.", min=1)] = 1,
    table: Annotated[str | None, typer.Option(help="With a database URL as HISTORY: the table.")] = None,
    map_file: Annotated[Path | None, typer.Option("--map", help="YAML column map.")] = None,
    recipient_col: Annotated[str | None, typer.Option(help="Column of the recipient id.")] = None,
    timestamp_col: Annotated[str | None, typer.Option(help="Column of the event time.")] = None,
    type_col: Annotated[str | None, typer.Option(help="Column of the event type.")] = None,
    amount_col: Annotated[str | None, typer.Option(help="Column of the purchase amount.")] = None,
    chunk_rows: Annotated[int, typer.Option(help="Events read at a time.", min=1)] = 1_000_000,
    out: Annotated[Path | None, typer.Option(
        help="Also write one row per recipient to this .csv or .parquet file.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Per recipient: recency, frequency, monetary value, engagement counts, RFM scores, a K-means
    segment and (with --horizon-days) p_convert, read from the history in bounded memory."""
    from pydantic import ValidationError

    from api.cli.offline import progress_bars
    from api.cli.output import check_output, print_json
    from experiments.errors import InvalidInput
    from experiments.features import FeatureSettings, compute_features
    from simulations.column_maps import load_column_map
    from simulations.history import HistoryColumns, read_history, read_sql_history

    if out is not None and out.suffix.lower() not in (".csv", ".parquet"):
        raise CliError(f"--out {out}: give a .csv or .parquet file")
    check_output("--out", out)
    fields = load_column_map(map_file, HistoryColumns).model_dump(exclude_unset=True) if map_file else {}
    given = {"recipient_id": recipient_col, "timestamp": timestamp_col, "type": type_col,
             "amount": amount_col}
    fields.update({role: column for role, column in given.items() if column is not None})
    try:
        columns = HistoryColumns(**fields)
    except ValidationError as exc:
        problems = (e["msg"].removeprefix("Value error, ") for e in exc.errors())
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
            result = compute_features(events, settings,
                                      on_progress=lambda read: on_progress("events", read, None))  # type: ignore[arg-type]
    except InvalidInput as exc:
        option = "HISTORY" if exc.field == "events" else _SETTING_TO_OPTION.get(exc.field, exc.field)
        raise CliError(f"{option}: {exc.reason}") from None
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
