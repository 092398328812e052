"""The root command: sub-commands loaded when they are used, and every error as one line.

The sub-commands are registered by name (:class:`LazyCommand`): a command's module, and the libraries
it needs, are imported only when that command runs or shows its own help, so ``sendlab --help`` and a
planning command start without loading the database, the data frame or the statistics libraries.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import typer
from typer import _click as click  # Typer vendors click: its exception classes are these
from typer.core import TyperCommand, TyperGroup

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
    from api.errors import describe_error  # the error types, only once there is an error

    answer = describe_error(exc)
    if answer is not None:
        return answer.one_line()
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror}"
    # A library's exception exists only once the library is loaded: look it up, never import it here.
    sqlalchemy_exc = sys.modules.get("sqlalchemy.exc")
    if sqlalchemy_exc is not None and isinstance(exc, sqlalchemy_exc.ArgumentError):
        return f"--db: {exc}".splitlines()[0]
    if sqlalchemy_exc is not None and (
        isinstance(exc, sqlalchemy_exc.OperationalError) or type(exc) is sqlalchemy_exc.DatabaseError
    ):
        # "unable to open database file", "file is not a database"; not IntegrityError and the like (bugs)
        return f"--db: cannot use the database: {exc.orig}".splitlines()[0]
    policy = sys.modules.get("bandit.policy")
    if policy is not None and isinstance(exc, policy.PolicyError):
        return str(exc)
    if isinstance(exc, UnicodeDecodeError):
        return "input is not UTF-8 text"
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(exc, pandas.errors.EmptyDataError):
        return "an input file is empty"
    if pandas is not None and isinstance(exc, pandas.errors.ParserError):
        return f"not a valid CSV file: {exc}".splitlines()[0]
    pyarrow = sys.modules.get("pyarrow")
    if pyarrow is not None and isinstance(exc, pyarrow.ArrowInvalid):
        return f"not a Parquet file: {exc}"
    if isinstance(exc, MemoryError):
        return "out of memory: ask for a smaller computation"
    return None


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in text.strip().splitlines() if part.strip())


@dataclass(frozen=True)
class LazyCommand:
    """A sub-command known by name until it is used.

    Attributes
    ----------
    target : str
        ``"module:attribute"``: a command function or a ``typer.Typer`` of sub-commands.
    help : str
        The one line ``sendlab --help`` shows (a test checks it against the command's own).
    """

    target: str
    help: str

    def load(self, name: str) -> click.Command:
        """Import the module and build the click command, named ``name``."""
        module_name, attribute = self.target.split(":")
        found = getattr(importlib.import_module(module_name), attribute)
        if isinstance(found, typer.Typer):  # a group, even of one sub-command (as add_typer keeps it)
            command = typer.main.get_group(found)
        else:
            holder = typer.Typer()
            holder.command(name)(found)
            command = typer.main.get_command(holder)
        command.name = name
        return command


class _Listed(TyperCommand):
    """What the root's help lists for a command not loaded yet: its name and its line of help."""

    def __init__(self, name: str, help: str) -> None:
        super().__init__(name, short_help=help, help=help)


class SendlabGroup(TyperGroup):
    """The root command: every error below it ends as ``error: <one line>`` on stderr.

    Subclasses name their sub-commands in ``lazy_commands``; each is loaded on first use.
    """

    lazy_commands: Mapping[str, LazyCommand] = {}
    _listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return [*self.lazy_commands, *(n for n in super().list_commands(ctx) if n not in self.lazy_commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> click.Command | None:
        lazy = self.lazy_commands.get(cmd_name)
        if lazy is None or cmd_name in self.commands:
            return super().get_command(ctx, cmd_name)
        if self._listing:
            return _Listed(cmd_name, lazy.help)
        command = lazy.load(cmd_name)
        self.commands[cmd_name] = command
        return command

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

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
