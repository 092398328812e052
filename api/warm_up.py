"""A ``sendlab serve`` worker's warm-up: the compiled kernels its experiments' policies need, made ready
before the first decision asks for them.

Linear Thompson sampling's propensities run a numba kernel (:mod:`bandit.midpoint_rule`) that is
compiled on first use, or loaded from numba's on-disk cache: seconds on a new install, about one in a
later process (README). A worker whose store holds an experiment, not archived, with a ``linear_ts``
policy does that in a background thread as it starts, so no send-time request waits for it. The thread
never fails the worker: whatever goes wrong is logged and the kernel is compiled on first use instead.
"""

from __future__ import annotations

import logging
import threading

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


def start_warm_up(service: ExperimentService) -> threading.Thread:
    """Start the warm-up of ``service``'s compiled kernels in a daemon thread (returned)."""
    thread = threading.Thread(target=_warm, args=(service,), name="sendlab-warm-up", daemon=True)
    thread.start()
    return thread
