"""Metric values shared between worker processes through small files in one directory.

Each worker writes its own values into its own file, memory-mapped, so an update is a few bytes
written in place (no system call); any worker reads every file to answer a scrape. The idea is
prometheus_client's multiprocess mode; the format is SendLab's own:

- bytes 0-8: the number of bytes in use (little-endian uint64), written after each new entry is
  complete, so a reader never sees half an entry;
- then entries: the key's length (uint32), the key (UTF-8 JSON), zero padding to a multiple of 8
  bytes, and the value (float64, 8-byte aligned, overwritten in place on every update).

One process writes a file; readers copy it with one ``read`` and parse up to the used length.
"""

from __future__ import annotations

import mmap
import os
import struct
import uuid
from pathlib import Path

SUFFIX = ".metrics"
_HEADER = struct.Struct("<Q")
_LENGTH = struct.Struct("<I")
_VALUE = struct.Struct("<d")
_INITIAL_SIZE = 64 * 1024


def _padded(n: int) -> int:
    return (n + 7) // 8 * 8


class WorkerFile:
    """This process's values, in ``<directory>/worker-<pid>-<random>.metrics``.

    Parameters
    ----------
    directory : path
        The shared directory; it must exist.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.path = Path(directory) / f"worker-{os.getpid()}-{uuid.uuid4().hex[:8]}{SUFFIX}"
        self._handle = open(self.path, "w+b")  # noqa: SIM115 - kept open for the process's life
        self._handle.truncate(_INITIAL_SIZE)
        self._map = mmap.mmap(self._handle.fileno(), _INITIAL_SIZE)
        self._used = _HEADER.size
        _HEADER.pack_into(self._map, 0, self._used)
        self._key_to_offset: dict[str, int] = {}

    def set(self, key: str, value: float) -> None:
        """Write ``value`` under ``key`` (appending the key the first time it is seen)."""
        offset = self._key_to_offset.get(key)
        if offset is None:
            offset = self._append(key)
        _VALUE.pack_into(self._map, offset, value)

    def _append(self, key: str) -> int:
        encoded = key.encode("utf-8")
        start = self._used
        value_at = _padded(start + _LENGTH.size + len(encoded))
        end = value_at + _VALUE.size
        if end > len(self._map):
            self._grow(end)
        _LENGTH.pack_into(self._map, start, len(encoded))
        self._map[start + _LENGTH.size : start + _LENGTH.size + len(encoded)] = encoded
        _VALUE.pack_into(self._map, value_at, 0.0)
        self._used = end
        _HEADER.pack_into(self._map, 0, end)  # last: the entry is complete before readers count it
        self._key_to_offset[key] = value_at
        return value_at

    def _grow(self, needed: int) -> None:
        size = len(self._map)
        while size < needed:
            size *= 2
        self._map.flush()
        self._map.close()
        self._handle.truncate(size)
        self._map = mmap.mmap(self._handle.fileno(), size)

    def close(self) -> None:
        """Unmap and close the file (it stays in the directory: its counts still count)."""
        self._map.close()
        self._handle.close()


def read_file(path: str | os.PathLike[str]) -> dict[str, float]:
    """The values of one worker file (an empty mapping for a file too short to hold any)."""
    data = Path(path).read_bytes()
    if len(data) < _HEADER.size:
        return {}
    (used,) = _HEADER.unpack_from(data, 0)
    used = min(used, len(data))
    out: dict[str, float] = {}
    position = _HEADER.size
    while position + _LENGTH.size <= used:
        (length,) = _LENGTH.unpack_from(data, position)
        key_end = position + _LENGTH.size + length
        value_at = _padded(key_end)
        if value_at + _VALUE.size > used:
            break
        out[data[position + _LENGTH.size : key_end].decode("utf-8")] = _VALUE.unpack_from(data, value_at)[0]
        position = value_at + _VALUE.size
    return out


def worker_files(directory: str | os.PathLike[str]) -> list[Path]:
    """Every worker file in ``directory``, by name."""
    return sorted(Path(directory).glob(f"worker-*{SUFFIX}"))


def file_pid(path: Path) -> int | None:
    """The process id in a worker file's name."""
    parts = path.name.split("-")
    return int(parts[1]) if len(parts) >= 3 and parts[1].isdigit() else None


def is_alive(pid: int) -> bool:
    """Whether a process with this id exists (it may belong to another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clear_directory(directory: str | os.PathLike[str]) -> None:
    """Remove the worker files a previous run left (their counts belong to that run)."""
    for path in worker_files(directory):
        path.unlink(missing_ok=True)
