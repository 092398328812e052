"""The one place where the command line turns errors into one readable line and a non-zero exit."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import pandas
import sqlalchemy.exc
import typer
from typer import _click as click  # Typer vendors click: its exception classes are these
from typer.core import TyperGroup

from api.errors import describe_error
from bandit import PolicyError

#: Exit status for bad input found by SendLab (click's own usage errors exit with 2).
EXIT_BAD_INPUT = 1


class CliError(click.exceptions.ClickException):
    """A problem to report on one line, then exit non-zero."""

    exit_code = EXIT_BAD_INPUT


def explain(exc: BaseException) -> str | None:
    """One line for a known error; ``None`` for anything else (a bug, shown with its traceback).

    The readers name the file they could not read (``sends.csv: not UTF-8 text``); the lines here for
    a file that is not UTF-8, an empty CSV or a text file named ``.parquet`` are the fallback of a
    reader that does not.
    """
    answer = describe_error(exc)
    if answer is not None:
        return answer.one_line()
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror}"
    if isinstance(exc, sqlalchemy.exc.ArgumentError):
        return f"--db: {exc}".splitlines()[0]
    if isinstance(exc, sqlalchemy.exc.OperationalError) or type(exc) is sqlalchemy.exc.DatabaseError:
        # "unable to open database file", "file is not a database"; not IntegrityError and the like (bugs)
        return f"--db: cannot use the database: {exc.orig}".splitlines()[0]
    if isinstance(exc, PolicyError):
        return str(exc)
    if isinstance(exc, UnicodeDecodeError):
        return "input is not UTF-8 text"
    if isinstance(exc, pandas.errors.EmptyDataError):
        return "an input file is empty"
    if isinstance(exc, pandas.errors.ParserError):
        return f"not a valid CSV file: {exc}".splitlines()[0]
    pyarrow = sys.modules.get("pyarrow")
    if pyarrow is not None and isinstance(exc, pyarrow.ArrowInvalid):
        return f"not a Parquet file: {exc}"
    if isinstance(exc, MemoryError):
        return "out of memory: ask for a smaller computation"
    return None


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in text.strip().splitlines() if part.strip())


class SendlabGroup(TyperGroup):
    """The root command: every error below it ends as ``error: <one line>`` on stderr."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, typer.Exit, typer.Abort):
            raise
        except Exception as exc:
            message = explain(exc)
            if message is None:
                raise
            raise CliError(_one_line(message)) from exc

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:  # the help was printed: nothing to add
            sys.exit(exc.exit_code)
        except click.exceptions.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else "sendlab"
            typer.echo(f"error: {where}: {_one_line(exc.format_message())} (see --help)", err=True)
            sys.exit(exc.exit_code)
        except click.exceptions.ClickException as exc:
            typer.echo(f"error: {_one_line(exc.format_message())}", err=True)
            sys.exit(exc.exit_code)
        except typer.Abort:
            typer.echo("aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)
