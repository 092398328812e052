"""``/v1/recipients/{recipient_id}``: everything stored about one recipient, and its erasure (admin key)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import APIRouter, Depends, HTTPException

from api.convert import to_jsonable
from api.deps import ServiceDep, SettingsDep, require_admin
from api.models.common import MessageBody, ValidationErrorBody
from experiments.errors import InvalidInput
from experiments.recipients import read_recipient

router = APIRouter(
    prefix="/v1/recipients",
    tags=["recipients"],
    dependencies=[Depends(require_admin)],
    responses={401: {"model": MessageBody}, 403: {"model": MessageBody}, 422: {"model": ValidationErrorBody}},
)


@contextmanager
def _path_id() -> Iterator[None]:
    """A bad ``recipient_id`` is a 422 at the path parameter, not at a body the call does not have."""
    try:
        yield
    except InvalidInput as exc:
        raise HTTPException(422, [{"loc": ["path", exc.field], "msg": exc.reason}]) from None


@router.get("/{recipient_id}")
def show_recipient(recipient_id: str, service: ServiceDep) -> dict[str, Any]:
    """Every decision about the recipient, with the context stored with it and its outcomes (an empty
    ``decisions`` list when nothing is stored, as after an erasure)."""
    with _path_id():
        return to_jsonable(read_recipient(service.engine, recipient_id))


@router.delete("/{recipient_id}", responses={409: {"model": MessageBody}})
def erase(recipient_id: str, service: ServiceDep, settings: SettingsDep) -> dict[str, Any]:
    """Erase the recipient: contexts dropped, the id (and their outcomes' event ids) replaced by an
    irreversible token, decisions and outcomes kept as counts, so results are unchanged."""
    if not settings.erasure_secret:
        raise HTTPException(409, "erasure is not configured: set SENDLAB_ERASURE_SECRET (16 bytes or more)")
    with _path_id():
        return to_jsonable(service.erase_recipient(recipient_id, settings.erasure_secret.encode()))
