"""``/healthz`` and ``/metrics``."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from api.deps import MetricsDep

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(registry: MetricsDep) -> PlainTextResponse:
    """Counters and the latency histogram in the Prometheus text format, summed over every worker
    process of the server (``sendlab serve --workers N``), and each live worker's start time."""
    return PlainTextResponse(registry.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
