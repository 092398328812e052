"""Models shared by every route: the error bodies."""

from __future__ import annotations

import dataclasses
from typing import Any, get_type_hints

from pydantic import BaseModel, create_model


class ErrorItem(BaseModel):
    """One problem with a request: where (``loc``) and what (``msg``)."""

    loc: list[str | int]
    msg: str


class ValidationErrorBody(BaseModel):
    """A 422 answer: every problem found, each naming its field."""

    detail: list[ErrorItem]


class MessageBody(BaseModel):
    """A 401, 403, 404 or 409 answer."""

    detail: str


def model_of(name: str, record: type, doc: str, **fields: Any) -> type[BaseModel]:
    """A response model named ``name`` with the fields of the dataclass ``record`` (its names and types,
    in its order, with its defaults), then ``fields`` (``(type, default)`` pairs, ``...`` for required),
    which also replace fields of ``record`` of the same name: the answer's shape is written once, by
    the record it is made from."""
    hints = get_type_hints(record)
    found: dict[str, Any] = {
        f.name: (hints[f.name], ... if f.default is dataclasses.MISSING else f.default)
        for f in dataclasses.fields(record)
    }
    found.update(fields)
    return create_model(name, __doc__=doc, __module__=__name__, **found)

