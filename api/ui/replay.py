"""The replay page at ``/ui/replay``: a candidate policy evaluated on an experiment's own decision log.

The page runs what ``sendlab replay --experiment KEY --policy candidate.yaml`` runs (the store's log as a
:class:`~simulations.sources.RecordSource`, :func:`simulations.streaming.replay_source`), with the same
defaults, shows each estimate against the logged policy with its interval, and prints the command that
reproduces it. The form is a GET: a replay changes nothing, and its address can be shared.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args

import yaml
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from analysis.palette import OKABE_ITO
from api.ui.charts import figure_json
from api.ui.routes import PageAccess, page_response
from bandit import POLICY_NAMES, PolicyError
from experiments.errors import NotFound
from experiments.export import EXPORT_CHUNK_ROWS
from simulations.candidates import CandidateSpec, candidate_from_mapping, candidate_from_text
from simulations.errors import SimulationInputError
from simulations.estimators import ESTIMATORS
from simulations.reward_model import RewardModelKind
from simulations.sources import experiment_source
from simulations.streaming import ReplayRequest, replay_source

router = APIRouter(include_in_schema=False)  # mounted under the pages' /ui

#: Estimators ticked when the form is first shown (those of ``sendlab replay``'s default).
DEFAULT_ESTIMATORS = ("ips", "snips", "dm", "dr")
#: Most rows a replay inside a request reads; larger logs go to the command line.
MAX_PAGE_ROWS = 1_000_000
#: Most bootstrap replicates a replay inside a request draws.
MAX_PAGE_BOOTSTRAP = 2_000


@dataclass(frozen=True)
class ReplayForm:
    """What the form asked (the query string), as typed."""

    experiment: str
    candidate: Literal["policy", "spec"]
    policy: str
    options: str
    train: bool
    train_fraction: float
    spec: str
    estimators: tuple[str, ...]
    reward_model: str
    alpha: float
    seed: int
    bootstrap: int


class FormError(ValueError):
    """A field of the form that cannot be used: ``field`` and the reason."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field


def candidate_of(form: ReplayForm) -> tuple[CandidateSpec, str]:
    """The candidate the form describes and the candidate file's text that gives it to the CLI."""
    if form.candidate == "spec":
        if not form.spec.strip():
            raise FormError("spec", "paste a candidate document or an experiment spec (YAML or JSON)")
        return candidate_from_text(form.spec, "spec"), form.spec.strip() + "\n"
    try:
        options = yaml.safe_load(form.options) if form.options.strip() else {}
    except yaml.YAMLError as exc:
        raise FormError("options", f"not valid YAML: {exc}") from None
    if not isinstance(options, dict):
        raise FormError("options", "a mapping of option names to values, e.g. {prior_alpha: 1}")
    document = {"policy": form.policy, "options": options, "train": form.train,
                "train_fraction": form.train_fraction}
    text = yaml.safe_dump(document, sort_keys=False, default_flow_style=None)
    return candidate_from_mapping(document, "policy"), text


def store_url(request: Request) -> str:
    """The service's store as a ``--db`` value, its password (if any) written as ``***``."""
    return request.app.state.service.engine.url.render_as_string(hide_password=True)


def replay_command(form: ReplayForm, db: str) -> str:
    """The shell commands that write the candidate file and run the same replay as JSON."""
    args = ["sendlab", "replay", "--db", db, "--experiment", form.experiment, "--policy", "candidate.yaml",
            "--estimators", ",".join(form.estimators), "--reward-model", form.reward_model,
            "--alpha", f"{form.alpha:g}", "--seed", str(form.seed)]
    if form.bootstrap:
        args += ["--bootstrap", str(form.bootstrap)]
    return " ".join(shlex.quote(a) for a in args) + " --json"


def estimates_figure(result: dict[str, Any], alpha: float) -> dict[str, Any]:
    """Each candidate estimate and the logged policy's mean reward with their intervals (a plain figure
    dictionary: one marker per estimate, the interval as error bars; none for an estimate without an
    interval, such as the direct method's without a refit bootstrap)."""
    rows = [("logged policy", result["logged"])]
    rows += [(f"{c['name']}: {e['estimator']}", e) for c in result["candidates"] for e in c["estimates"]]
    traces = []
    for k, (label, e) in enumerate(rows):
        if e["value"] is None:  # no estimate: nothing to draw (the table says why)
            continue
        low, high = e["ci"]
        interval = low is not None and high is not None
        traces.append({
            "type": "scatter", "mode": "markers", "name": label, "x": [e["value"]], "y": [label],
            "marker": {"size": 11, "color": OKABE_ITO[0] if k == 0 else OKABE_ITO[5]},
            "error_x": ({"type": "data", "symmetric": False, "array": [high - e["value"]],
                         "arrayminus": [e["value"] - low], "color": "#444"} if interval
                        else {"visible": False}),
            "hovertemplate": (f"{label}: %{{x:.4g}} [{low:.4g}, {high:.4g}]<extra></extra>" if interval
                              else f"{label}: %{{x:.4g}} (no interval)<extra></extra>"),
        })
    layout = {"height": 120 + 40 * len(rows), "margin": {"t": 50, "b": 50, "l": 10, "r": 10},
              "showlegend": False, "plot_bgcolor": "white",
              "title": {"text": f"Estimated value per decision with {1 - alpha:.0%} intervals"},
              "xaxis": {"title": {"text": "mean reward per decision"}, "zeroline": False},
              "yaxis": {"autorange": "reversed", "automargin": True}}
    return {"data": traces, "layout": layout}


def run_replay(request: Request, form: ReplayForm) -> dict[str, Any]:
    """Run the replay the form asks for; what the page shows of it."""
    candidate, candidate_text = candidate_of(form)
    service = request.app.state.service
    source = experiment_source(service, form.experiment, EXPORT_CHUNK_ROWS)
    if source.rows > MAX_PAGE_ROWS:
        raise FormError("experiment", f"{source.rows:,} decisions is more than a page replays "
                        f"({MAX_PAGE_ROWS:,}); run the command below instead")
    request = ReplayRequest(candidate=candidate, estimators=form.estimators,  # type: ignore[arg-type]
                            reward_model_kind=form.reward_model, alpha=form.alpha,  # type: ignore[arg-type]
                            seed=form.seed, bootstrap=form.bootstrap)
    result = replay_source(source, request)
    data = json.loads(json.dumps(result.to_dict()))  # the JSON the command prints
    return {"result": data, "figure": figure_json(estimates_figure(data, form.alpha)),
            "result_json": figure_json(data), "candidate_text": candidate_text}


@router.get("/replay", response_class=HTMLResponse, dependencies=[PageAccess])
def replay_page(
    request: Request,
    experiment: str | None = None,
    candidate: Literal["policy", "spec"] = "policy",
    policy: Literal[POLICY_NAMES] = "thompson",  # type: ignore[valid-type]
    options: str = "",
    train: bool = False,
    train_fraction: Annotated[float, Query(ge=0, lt=1)] = 0.5,
    spec: str = "",
    estimators: Annotated[list[str] | None, Query()] = None,
    reward_model: Literal[get_args(RewardModelKind)] = "auto",  # type: ignore[valid-type]
    alpha: Annotated[float, Query(gt=0, lt=1)] = 0.05,
    seed: Annotated[int, Query(ge=0)] = 0,
    bootstrap: Annotated[int, Query(ge=0, le=MAX_PAGE_BOOTSTRAP)] = 0,
) -> HTMLResponse:
    """Pick an experiment and a candidate; see its estimated value against the logged policy."""
    infos = request.app.state.service.list()
    chosen = tuple(e for e in ESTIMATORS if e in (estimators or DEFAULT_ESTIMATORS))
    form = ReplayForm(experiment or "", candidate, policy, options, train, train_fraction, spec, chosen,
                      reward_model, alpha, seed, bootstrap)
    context: dict[str, Any] = {"result": None, "error": None, "command": None}
    status = 200
    if experiment is not None:
        try:
            if not chosen:
                raise FormError("estimators", "tick at least one estimator")
            context.update(run_replay(request, form))
            context["command"] = replay_command(form, store_url(request))
        except NotFound:
            context["error"], status = f"experiment: there is no experiment {experiment!r}", 404
        except (FormError, SimulationInputError) as exc:
            context["error"], status = str(exc), 422
        except PolicyError as exc:  # the policy's name or options: the field they were given in
            field = "spec" if candidate == "spec" else "options"
            text = str(exc)
            context["error"] = text if text.startswith(f"{field}:") else f"{field}: {text}"
            status = 422
    return page_response(request, "replay.html", status_code=status, title="Replay a policy", form=form,
                 experiments=infos, policies=POLICY_NAMES, estimator_names=ESTIMATORS,
                 reward_models=get_args(RewardModelKind), **context)
