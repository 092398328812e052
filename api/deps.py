"""Dependencies as annotated types: the service, the settings, the metrics and the two access levels.

They are ``async def`` because none of them waits on anything: FastAPI runs a plain ``def`` dependency
in its thread pool, a hop to another thread and back for each one on every request (at send time,
four per assign: more CPU than the assignment itself).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.auth import AuthError, Scope, check_access
from api.metrics import ServiceMetrics
from api.settings import Settings
from experiments.drift_block import DriftAlertCache
from experiments.service import ExperimentService


async def get_service(request: Request) -> ExperimentService:
    return request.app.state.service


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_metrics(request: Request) -> ServiceMetrics:
    return request.app.state.metrics


async def get_drift_alerts(request: Request) -> DriftAlertCache:
    return request.app.state.drift_alerts


ServiceDep = Annotated[ExperimentService, Depends(get_service)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]
DriftAlertsDep = Annotated[DriftAlertCache, Depends(get_drift_alerts)]


_bearer = HTTPBearer(auto_error=False, description="SENDLAB_ADMIN_KEY or SENDLAB_SEND_KEY")


def _require(scope: Scope):
    async def dependency(
        settings: SettingsDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> None:
        header = f"Bearer {credentials.credentials}" if credentials else None
        try:
            check_access(settings, header, scope)
        except AuthError as exc:
            headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
            raise HTTPException(exc.status, exc.message, headers=headers) from exc

    dependency.__name__ = f"require_{scope}"
    return dependency


require_admin = _require("admin")
require_send = _require("send")
