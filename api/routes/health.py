"""``/healthz`` and ``/metrics``."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from api.deps import DriftAlertsDep, MetricsDep, ServiceDep
from api.metrics import drift_gauge

router = APIRouter(tags=["operations"])
logger = logging.getLogger(__name__)


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(registry: MetricsDep, service: ServiceDep, drift_alerts: DriftAlertsDep) -> PlainTextResponse:
    """Counters and the latency histogram in the Prometheus text format, summed over every worker
    process of the server (``sendlab serve --workers N``), each live worker's start time, and each
    experiment's drift alert (``sendlab_drift_alert``, read at most a minute before:
    :class:`experiments.drift_block.DriftAlertCache`; left out, and logged, when the database cannot
    be read, so that the process's own metrics still answer)."""
    try:
        alerts = drift_alerts.alerts(service, service.clock())
    except Exception:  # noqa: BLE001 - any failure of the store: the other metrics still answer
        logger.exception("the drift gauge could not be read")
        alerts = {}
    text = registry.render() + drift_gauge(alerts)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")
