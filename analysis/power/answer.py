"""The base of every planning answer: a frozen dataclass that turns itself into JSON-ready data."""

from __future__ import annotations

import dataclasses
from typing import Any


class Answer:
    """Mixin of the answer dataclasses: :meth:`to_dict` gives their fields as JSON-ready data."""

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dictionary; tuples become lists and nested answers dictionaries."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]


def _plain(value: Any) -> Any:
    if isinstance(value, Answer):
        return value.to_dict()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
