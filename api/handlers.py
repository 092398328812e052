"""FastAPI exception handlers: every known error answered as :func:`api.errors.describe_error` says."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.errors import DOMAIN_ERRORS, describe_error, describe_unavailable
from experiments.group_commit import GroupCommitError

logger = logging.getLogger("sendlab.api")


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    answer = describe_error(exc)
    if answer is None:  # pragma: no cover - only registered for known classes
        raise exc
    return JSONResponse(answer.body(), status_code=answer.status)


async def _request_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    # The default handler echoes each bad input back; a 100,001-recipient batch must not be.
    problems = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e.get("type")} for e in exc.errors()]
    return JSONResponse({"detail": problems}, status_code=422)


async def _http_exception(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if exc.status_code == 400 and isinstance(exc.__cause__, ValueError | RecursionError):
        # FastAPI could not decode the body (e.g. bytes that are not UTF-8, or JSON nested deeper than
        # the parser recurses): a bad input, answered as every other one is, with the field and the reason.
        if isinstance(exc.__cause__, RecursionError):
            reason = "could not be read as JSON: nested too deeply"
        else:
            reason = f"could not be read as JSON: {exc.__cause__.__class__.__name__}"
        return JSONResponse({"detail": [{"loc": ["body"], "msg": reason}]}, status_code=422)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse({"detail": "internal error (logged)"}, status_code=500)


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """503 with ``Retry-After`` while the database cannot be reached; any other database error is a 500."""
    answer = describe_unavailable(exc)
    if answer is None:
        return await _unexpected(request, exc)
    logger.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
    return JSONResponse(answer.body(), status_code=answer.status, headers=dict(answer.headers))


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that map every known error to its answer."""
    for cls in DOMAIN_ERRORS:
        app.add_exception_handler(cls, _domain_error)
    for cls in (SQLAlchemyError, GroupCommitError):
        app.add_exception_handler(cls, _database_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(Exception, _unexpected)
