"""Models shared by every route: the error bodies."""

from __future__ import annotations

from pydantic import BaseModel


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
