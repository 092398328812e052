"""``sendlab experiments create|list|show|pause|resume|archive|graduate`` and ``sendlab assign``."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from api.cli.db import DEFAULT, DbOption, open_service
from api.cli.group import CliError
from api.cli.output import check_output, print_fields, print_json, print_table
from api.cli.records import iter_records, row_error
from api.convert import decision_to_dict, experiment_to_dict
from experiments.errors import InvalidInput
from experiments.limits import CLI_FILE_BATCH
from experiments.sends import check_send_id
from experiments.service import ExperimentService
from experiments.spec import ExperimentSpec, parse_spec

experiments_app = typer.Typer(help="Create, list, show, pause, resume, archive and graduate experiments.",
                              no_args_is_help=True)

Json = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
Key = Annotated[str, typer.Argument(help="The experiment's key.")]


def _show_experiment(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(data)
        return
    print_fields([(k, data.get(k)) for k in ("key", "name", "version", "status", "apprentice", "updated_at")])
    for warning in data.get("warnings", []):
        typer.echo(f"warning: {warning}")


def spec_content_type(path: Path) -> str:
    """JSON for ``.json`` files, YAML for everything else."""
    return "application/json" if path.suffix.lower() == ".json" else "application/yaml"


def read_spec(path: Path) -> ExperimentSpec:
    """The spec in a YAML or JSON file; a file that is not UTF-8 text is named in the error."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CliError(f"{path}: not UTF-8 text") from exc
    return parse_spec(text, content_type=spec_content_type(path))


@experiments_app.command("create")
def create(
    spec_file: Annotated[Path, typer.Argument(help="The spec, a YAML or JSON file.")],
    db: DbOption = DEFAULT,
    as_json: Json = False,
) -> None:
    """Create an experiment from its spec (a changed spec for an existing key makes a new version)."""
    spec = read_spec(spec_file)
    info = open_service(db).create(spec)
    _show_experiment(experiment_to_dict(info, with_spec=False), as_json)


@experiments_app.command("list")
def list_(db: DbOption = DEFAULT, as_json: Json = False) -> None:
    """All experiments."""
    items = [experiment_to_dict(i, with_spec=False) for i in open_service(db).list()]
    if as_json:
        print_json(items)
    elif not items:
        typer.echo("no experiments")
    else:
        print_table(["key", "version", "status", "name"],
                    [[i["key"], i["version"], i["status"], i["name"]] for i in items])


@experiments_app.command("show")
def show(key: Key, db: DbOption = DEFAULT, as_json: Json = False) -> None:
    """One experiment with its spec."""
    data = experiment_to_dict(open_service(db).get(key))
    if as_json:
        print_json(data)
        return
    _show_experiment(data, False)
    for slot, variants in data["spec"]["slots"].items():
        typer.echo(f"slot {slot}: " + ", ".join(v["id"] for v in variants["variants"]))
    design = data["spec"]["design"]
    typer.echo(f"design: {design['type']}" + (f" ({design['policy']})" if design.get("policy") else ""))


def _status_command(name: str, status: str, doc: str) -> None:
    def command(key: Key, db: DbOption = DEFAULT, as_json: Json = False) -> None:
        info = open_service(db).set_status(key, status)
        _show_experiment(experiment_to_dict(info, with_spec=False), as_json)

    command.__doc__ = doc
    experiments_app.command(name)(command)


@experiments_app.command("graduate")
def graduate(key: Key, db: DbOption = DEFAULT, as_json: Json = False) -> None:
    """End a warm-started policy's apprenticeship: from now on it chooses (and explores)."""
    info = open_service(db).graduate(key)
    _show_experiment(experiment_to_dict(info, with_spec=False), as_json)


_status_command("pause", "paused", "Pause: recipients get the default variants.")
_status_command("resume", "running", "Resume a paused experiment.")
_status_command("archive", "archived", "Archive: the experiment no longer assigns or learns.")


def _json_limit(exc: BaseException) -> str:
    return "nested too deeply" if isinstance(exc, RecursionError) else "a number has too many digits"


def parse_context(pairs: list[str], context_json: str | None) -> dict[str, Any]:
    """The context from ``--context-json`` and ``--context name=value`` (values parsed as JSON if valid)."""
    context: dict[str, Any] = {}
    if context_json is not None:
        try:
            loaded = json.loads(context_json)
        except json.JSONDecodeError as exc:
            raise CliError(f"--context-json: not valid JSON: {exc.msg}") from exc
        except (ValueError, RecursionError) as exc:  # an integer of over 4,300 digits, deep nesting
            raise CliError(f"--context-json: not valid JSON: {_json_limit(exc)}") from exc
        if not isinstance(loaded, dict):
            raise CliError("--context-json: must be a JSON object")
        context.update(loaded)
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise CliError(f"--context: expected name=value, got {pair!r}")
        try:
            context[name] = json.loads(raw)
        except (ValueError, RecursionError):  # not JSON (or beyond the parser's limits): the text itself
            context[name] = raw
    return context


def _recipient_batches(
    path: Path, id_column: str
) -> Iterator[tuple[int, list[tuple[str, dict[str, Any]]]]]:
    """``(row number of the first, recipients)`` for consecutive batches of the file's rows."""
    batch: list[tuple[str, dict[str, Any]]] = []
    first = 1
    for number, row in iter_records(path):
        context = dict(row)
        recipient_id = context.pop(id_column, None)
        if recipient_id in (None, ""):
            raise CliError(f"{path} row {number}: no {id_column!r}")
        batch.append((str(recipient_id), context))
        if len(batch) == CLI_FILE_BATCH:
            yield first, batch
            batch, first = [], number + 1
    if batch:
        yield first, batch


def _check_send(service: ExperimentService, key: str, path: Path, id_column: str) -> int:
    """Check every row of the send as :meth:`assign_batch` would, storing nothing; the number of rows.

    A bad row is a :class:`CliError` naming the file's row (``send.csv row 10004: recipient_id: ...``).
    """
    total = 0
    for first, batch in _recipient_batches(path, id_column):
        try:
            service.check_recipients(key, batch)
        except InvalidInput as exc:
            raise row_error(path, first, exc, "recipients") from exc
        total += len(batch)
    return total


def _assign_file(
    key: str,
    path: Path,
    out: Path | None,
    db: str,
    id_column: str,
    as_json: bool,
    send_id: str | None,
    send_at: datetime | None,
    send_date: date | None = None,
) -> None:
    """Assign a whole file: every row is checked first, then the batches are assigned in file order.

    With ``send_id`` a re-run of the same send logs nothing new: each recipient already logged for the
    send gets its original decision back.

    Nothing is assigned when any row is bad or ``--out`` cannot be written; the decisions go to
    ``--out`` batch by batch, as each batch is committed.
    """
    if out is not None:
        check_output("--out", out, input_file=("--file", path))
    service = open_service(db)
    total = _check_send(service, key, path, id_column)
    if total == 0:
        raise CliError(f"--file: {path} has no rows")
    keep = as_json or out is None
    decisions: list[dict[str, Any]] = []
    chosen: Counter[str] = Counter()
    with ExitStack() as stack:
        handle = stack.enter_context(out.open("w", encoding="utf-8")) if out is not None else None
        bar = stack.enter_context(typer.progressbar(length=total, label="assigning", hidden=keep))
        for _, batch in _recipient_batches(path, id_column):
            done = [decision_to_dict(d) for d in service.assign_batch(
                key, batch, send_id=send_id, send_at=send_at, send_date=send_date
            )]
            if handle is not None:
                handle.writelines(json.dumps(d) + "\n" for d in done)
            if keep:
                decisions += done
            else:
                chosen.update(" + ".join(v["id"] for v in d["variants"].values()) for d in done)
            bar.update(len(batch))
    if keep:
        print_json(decisions)
        return
    typer.echo(f"{total:,} decisions written to {out}")
    print_table(["variants", "recipients"], chosen.most_common())


def _parsed(option: str, text: str | None, parse: Callable[[str], Any], what: str) -> Any:
    """``parse(text)``, None for None, or one error line naming the option."""
    if text is None:
        return None
    try:
        return parse(text)
    except ValueError as exc:
        raise CliError(f"{option}: not {what}: {text!r}") from exc


def assign(
    key: Key,
    recipient: Annotated[str | None, typer.Option("--recipient", "-r", help="The recipient's id.")] = None,
    context: Annotated[
        list[str] | None, typer.Option("--context", "-c", help="name=value, repeatable.")
    ] = None,
    context_json: Annotated[str | None, typer.Option(help="The whole context as a JSON object.")] = None,
    file: Annotated[Path | None, typer.Option(
        "--file", help="A whole send: .csv, .jsonl or .json rows of recipient_id and context columns."
    )] = None,
    out: Annotated[
        Path | None, typer.Option(help="With --file: write the decisions here (JSON Lines).")
    ] = None,
    id_column: Annotated[
        str, typer.Option(help="With --file: the column of the recipient's id.")
    ] = "recipient_id",
    send_id: Annotated[str | None, typer.Option(
        help="The send these decisions belong to: run again with the same id, a recipient already "
        "logged for it gets its original decision and nothing is logged again."
    )] = None,
    send_at: Annotated[str | None, typer.Option(
        help="When the email goes out (ISO 8601, UTC unless it has an offset): the reward window and "
        "the learning delay run from it."
    )] = None,
    send_date: Annotated[str | None, typer.Option(
        help="For an experiment with send_time: the recipients' local date (YYYY-MM-DD; default: today in "
        "each one's zone, or tomorrow once the chosen hour has passed) the chosen hour falls on."
    )] = None,
    db: DbOption = DEFAULT,
    as_json: Json = False,
) -> None:
    """Assign one recipient, or a whole send from a file (decisions are logged, as over HTTP)."""
    if (recipient is None) == (file is None):
        raise CliError("--recipient / --file: give exactly one")
    if send_id is not None:
        try:
            check_send_id(send_id)
        except InvalidInput as exc:
            raise CliError(f"--send-id: {exc.reason}") from exc
    send_time = _parsed("--send-at", send_at, datetime.fromisoformat, "an ISO 8601 time")
    local_date = _parsed("--send-date", send_date, date.fromisoformat, "a date (YYYY-MM-DD)")
    if file is not None:
        _assign_file(key, file, out, db, id_column, as_json, send_id, send_time, local_date)
        return
    assert recipient is not None
    decision = open_service(db).assign(
        key, recipient, parse_context(context or [], context_json), send_id=send_id, send_at=send_time,
        send_date=local_date,
    )
    data = decision_to_dict(decision)
    if as_json:
        print_json(data)
        return
    print_fields([("decision", data["decision_id"]), ("propensity", data["propensity"]),
                  ("reason", data["reason"]), ("policy version", data["policy_version"])]
                 + ([("send at", data["send_at"])] if data["send_at"] is not None else []))
    for slot, variant in data["variants"].items():
        typer.echo(f"{slot}: {variant['id']}  {variant['content']!r}")
