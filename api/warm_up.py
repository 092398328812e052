"""A ``sendlab serve`` worker's warm-up: its routes built and the compiled kernels its experiments'
policies need made ready before the first request asks for them.

Routes: FastAPI builds the routes of each included router (their parameters' validators) the first
time a request is matched against them, 80 to 150 ms for SendLab's, which a worker's first request paid
(a first page view after a start, say). :func:`build_routes` matches a path that no route serves against
every route as the worker starts, before it accepts connections.

Kernels: linear Thompson sampling's propensities run a numba kernel (:mod:`bandit.midpoint_rule`) that
is compiled on first use, or loaded from numba's on-disk cache: seconds on a new install, about one in a
later process (README). A worker whose store holds an experiment, not archived, with a ``linear_ts``
policy does that in a background thread as it starts, so no send-time request waits for it.

Neither ever fails the worker: whatever goes wrong is logged, and the work is done on first use
instead.
"""

from __future__ import annotations

import logging
import threading

from fastapi import FastAPI

from experiments.service import ExperimentService

log = logging.getLogger(__name__)

#: The policies whose propensities run a compiled kernel.
COMPILED_POLICIES = frozenset({"linear_ts"})


def needs_warm_up(service: ExperimentService) -> bool:
    """Whether an experiment of ``service``, not archived, uses a policy of :data:`COMPILED_POLICIES`."""
    return any(info.status != "archived" and info.spec.design.policy in COMPILED_POLICIES
               for info in service.list())


def _warm(service: ExperimentService) -> None:
    try:
        if needs_warm_up(service):
            from bandit.gaussian_max import warm_up

            warm_up()
    except Exception:  # noqa: BLE001 - a warm-up must never stop a worker; the kernel compiles on first use
        log.warning("the compiled kernels' warm-up failed; they compile on first use", exc_info=True)


#: A path that no route serves: matched against every route, it makes FastAPI build them all.
_NO_ROUTE = "/\x00"


def build_routes(app: FastAPI) -> None:
    """Build every route of ``app`` now (FastAPI would on the first request matched against them), by
    matching a path that no route serves against each (Starlette's ``BaseRoute.matches``)."""
    scope = {"type": "http", "method": "GET", "path": _NO_ROUTE, "root_path": "", "headers": [],
             "query_string": b""}
    try:
        for route in app.router.routes:
            route.matches(dict(scope))
    except Exception:  # noqa: BLE001 - a warm-up must never stop a worker; the routes build on first use
        log.warning("building the routes at start failed; they are built on first use", exc_info=True)


def start_warm_up(service: ExperimentService) -> threading.Thread:
    """Start the warm-up of ``service``'s compiled kernels in a daemon thread (returned)."""
    thread = threading.Thread(target=_warm, args=(service,), name="sendlab-warm-up", daemon=True)
    thread.start()
    return thread
