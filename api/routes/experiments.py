"""``/v1/experiments``: create, list, read, pause, resume, archive, learn."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from api.convert import experiment_to_dict
from api.deps import ServiceDep, require_admin
from api.models.common import MessageBody, ValidationErrorBody
from api.models.experiments import ExperimentCreated, ExperimentPublic, ExperimentsPublic
from api.models.learning import LearnResult
from experiments.spec import parse_spec

router = APIRouter(
    prefix="/v1/experiments",
    tags=["experiments"],
    dependencies=[Depends(require_admin)],
    responses={401: {"model": MessageBody}, 403: {"model": MessageBody}},
)

JSON_TYPES = {"application/json"}
YAML_TYPES = {"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"}
NOT_FOUND = {404: {"model": MessageBody, "description": "No experiment with that key."}}

_SPEC_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The experiment spec, as JSON or as YAML (send `Content-Type: application/yaml`).",
        "content": {
            "application/json": {"schema": {"type": "object", "additionalProperties": True}},
            "application/yaml": {"schema": {"type": "string"}},
        },
    }
}


@router.post(
    "",
    status_code=201,
    response_model=ExperimentCreated,
    openapi_extra=_SPEC_BODY,
    responses={
        409: {"model": MessageBody},
        415: {"model": MessageBody, "description": "The body is neither JSON nor YAML."},
        422: {"model": ValidationErrorBody},
    },
)
async def create_experiment(request: Request, service: ServiceDep) -> dict[str, Any]:
    """Create an experiment (or a new version of it) from its spec."""
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if content_type not in JSON_TYPES | YAML_TYPES:
        raise HTTPException(
            415, f"content-type {content_type!r}: send the spec as application/json or application/yaml"
        )
    try:
        text = (await request.body()).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HTTPException(422, [{"loc": ["body"], "msg": f"not UTF-8 text: {exc.reason}"}]) from exc
    spec = parse_spec(text, content_type="application/json" if content_type in JSON_TYPES else content_type)
    info = await run_in_threadpool(service.create, spec)  # database work off the event loop
    return experiment_to_dict(info, with_spec=False)


@router.get("", response_model=ExperimentsPublic)
def list_experiments(service: ServiceDep) -> dict[str, Any]:
    """All experiments, with their specs."""
    items = [experiment_to_dict(info) for info in service.list()]
    return {"experiments": items, "count": len(items)}


@router.get("/{key}", response_model=ExperimentPublic, responses=NOT_FOUND)
def get_experiment(key: str, service: ServiceDep) -> dict[str, Any]:
    """One experiment with its spec."""
    return experiment_to_dict(service.get(key))


def _status_route(path: str, status: str, doc: str) -> None:
    def change_status(key: str, service: ServiceDep) -> dict[str, Any]:
        return experiment_to_dict(service.set_status(key, status))

    change_status.__doc__ = doc
    change_status.__name__ = f"{path}_experiment"
    router.add_api_route(
        f"/{{key}}/{path}",
        change_status,
        methods=["POST"],
        response_model=ExperimentPublic,
        responses={**NOT_FOUND, 409: {"model": MessageBody}},
        name=f"{path}_experiment",
    )


_status_route("pause", "paused", "Stop assigning new variants: recipients get the defaults.")
_status_route("resume", "running", "Resume a paused experiment.")
_status_route("archive", "archived", "Archive an experiment; it no longer assigns or learns.")


@router.post(
    "/{key}/learn",
    response_model=LearnResult,
    responses={**NOT_FOUND, 409: {"model": MessageBody, "description": "The design has no policy to learn."}},
)
def learn(key: str, service: ServiceDep) -> dict[str, Any]:
    """Learn from the outcomes that arrived since the last snapshot; answers the new policy version."""
    return {"key": key, "policy_version": service.learn(key)}


@router.post(
    "/{key}/graduate",
    response_model=ExperimentPublic,
    responses={**NOT_FOUND, 409: {"model": MessageBody,
                                  "description": "The design has no policy, or no warm start."}},
)
def graduate(key: str, service: ServiceDep) -> dict[str, Any]:
    """End the apprenticeship of a warm-started policy now: from here on it chooses (and explores).

    It also graduates by itself once its agreement with the incumbent passes ``design.warm_start``'s
    threshold. Graduating a policy that graduated already changes nothing; a design without a policy
    or without ``warm_start`` has nothing to graduate (409).
    """
    return experiment_to_dict(service.graduate(key))
