"""Files that are not what their names say, reported as :class:`SimulationInputError` naming the file.

A CSV file that is not UTF-8 text or is empty, a ``.parquet`` file that is not Parquet, text that does
not parse as CSV: the readers of logs, probabilities, candidates, scenarios and column maps read inside
:func:`reading`, so that the message says which file and what is wrong with it (``sends.csv: not UTF-8
text``) instead of the library's exception.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from simulations.data import SimulationInputError


def file_problem(path: str | Path, exc: BaseException) -> str | None:
    """``"<path>: <what is wrong>"`` when ``exc`` says the file cannot be read as its kind; else None."""
    if isinstance(exc, UnicodeDecodeError):
        return f"{path}: not UTF-8 text"
    pandas = sys.modules.get("pandas")  # imported only by the readers that use it
    if pandas is not None and isinstance(exc, pandas.errors.EmptyDataError):
        return f"{path}: empty"
    if pandas is not None and isinstance(exc, pandas.errors.ParserError):
        detail = str(exc).strip().removeprefix("Error tokenizing data. C error: ")
        return f"{path}: not a valid CSV file: {detail}".splitlines()[0]
    pyarrow = sys.modules.get("pyarrow")  # imported only by the readers that use it
    if pyarrow is not None and isinstance(exc, pyarrow.ArrowInvalid):
        try:
            size = Path(path).stat().st_size
        except OSError:
            size = None
        detail = str(exc).strip()
        if size == 0 or detail.startswith("Empty CSV file"):
            return f"{path}: empty"
        if Path(path).suffix.lower() in (".parquet", ".pq"):
            return f"{path}: not a Parquet file"
        if "invalid UTF8" in detail or not _starts_as_utf8(Path(path)):
            return f"{path}: not UTF-8 text"
        return f"{path}: not a valid CSV file: {detail}".splitlines()[0]
    return None


def _starts_as_utf8(path: Path) -> bool:
    """Whether the first 64 KiB of a text file (decompressed, for ``.gz``) are UTF-8 (pyarrow's CSV
    reader, which does not check a header's encoding, may fail on such a file with another message)."""
    import codecs
    import gzip

    try:
        with (gzip.open(path) if path.suffix.lower() == ".gz" else path.open("rb")) as file:
            start = file.read(1 << 16)
        codecs.getincrementaldecoder("utf-8")().decode(start, final=False)
    except UnicodeDecodeError:
        return False
    except OSError:
        return True  # not this check's question
    return True


@contextmanager
def reading(path: str | Path) -> Iterator[None]:
    """Turn an error of reading ``path`` that :func:`file_problem` knows into a SimulationInputError."""
    try:
        yield
    except Exception as exc:
        problem = file_problem(path, exc)
        if problem is None:
            raise
        raise SimulationInputError(problem) from exc


def read_yaml(path: str | Path) -> object:
    """The document of a YAML (or JSON) file; a file that cannot be read or parsed is a
    :class:`SimulationInputError` naming it."""
    with reading(path):
        text = Path(path).read_text(encoding="utf-8")
    return parse_yaml(text, str(path))


def parse_yaml(text: str, where: str) -> object:
    """The document of YAML (or JSON) text; text that cannot be parsed is a
    :class:`SimulationInputError` naming ``where`` it came from."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SimulationInputError(f"{where}: not valid YAML: {exc}") from None
