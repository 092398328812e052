"""The analyst's pages at ``/ui``: experiments, one experiment's results, the power calculator, reports.

Pages are rendered on the server (Jinja2); charts are plotly figures drawn in the browser by the
plotly.js that ships with the installed ``plotly`` package, served here (never a CDN).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs

import plotly
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response

from analysis.power import solve_rate_sample_size
from analysis.power_curves import power_curve
from analysis.power_plots import plot_power_curve
from api.convert import plan_to_dict
from api.models.power import RatePowerRequest
from api.results import ADAPTIVE_DESIGNS, ExperimentResults, analyze_summary
from api.ui.access import COOKIE, key_opens_pages, require_call_access, require_page_access, safe_next
from api.ui.cache import TimedCache
from api.ui.charts import allocation_figure, figure_json, policy_figure, posterior_figure, rates_figure
from api.ui.pages import render
from api.ui.views import (
    experiment_row,
    explored_days,
    policy_points,
    rate_metrics,
    rate_rows,
    srm_flag,
    traffic,
)
from experiments.errors import NotFound
from experiments.models import ExperimentInfo

STATIC = Path(__file__).resolve().parent / "static"
PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
STATIC_FILES = {"ui.css": "text/css", "ui.js": "text/javascript"}
CACHE_SECONDS = 15.0  # served as is
STALE_SECONDS = 600.0  # served at once while a background refresh runs

router = APIRouter(prefix="/ui", include_in_schema=False)
PageAccess = Depends(require_page_access)


# ---------------------------------------------------------------------------------------------- helpers


def results_cache(request: Request) -> TimedCache:
    """The app's cache of summaries and page contents (made on first use, kept on ``app.state``)."""
    cache = getattr(request.app.state, "ui_cache", None)
    if cache is None:
        cache = request.app.state.ui_cache = TimedCache(CACHE_SECONDS, stale_seconds=STALE_SECONDS)
    return cache


def reports_dir(request: Request) -> Path:
    """Where replay and simulation HTML reports are read from: the settings' ``reports_dir``
    (``SENDLAB_REPORTS_DIR``, default ``./reports``)."""
    return Path(request.app.state.settings.reports_dir)


def _page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    settings = request.app.state.settings
    html = render(template, auth_on=not settings.open, path=request.url.path, **context)
    return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})


def _not_found(request: Request, what: str) -> HTMLResponse:
    return _page(request, "missing.html", status_code=404, title="Not found", what=what)


def _summary(request: Request, info: ExperimentInfo) -> tuple[Any, float]:
    service = request.app.state.service
    key = ("summary", info.key, info.version)
    return results_cache(request).get(key, lambda: service.summarize(info.key))


# ---------------------------------------------------------------------------------------------- access


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/ui") -> HTMLResponse:  # noqa: A002 - the query's name
    """The key form."""
    return _page(request, "login.html", title="Enter a key", next=safe_next(next), error=None)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    """Check the typed key against the admin key; store it in the cookie and go on, or say why not."""
    form = parse_qs((await request.body()).decode("utf-8", errors="replace"))
    key = (form.get("key") or [""])[0].strip()
    target = safe_next((form.get("next") or ["/ui"])[0])
    if not key_opens_pages(request.app.state.settings, key):
        return _page(request, "login.html", status_code=401, title="Enter a key", next=target,
                     error="This key is not the admin key." if key else "Type the admin key.")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, key, httponly=False, samesite="strict", path="/",
                        secure=request.url.scheme == "https")
    return response


@router.post("/logout")
def logout() -> Response:
    """Forget the key."""
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


# ---------------------------------------------------------------------------------------------- static


@router.get("/static/plotly.min.js")
def plotly_js() -> FileResponse:
    """plotly.js as bundled with the installed ``plotly`` package."""
    return FileResponse(PLOTLY_JS, media_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=86400"})


@router.get("/static/{name}")
def static_file(name: str) -> Response:
    """The pages' own stylesheet and script."""
    if name not in STATIC_FILES:
        return JSONResponse({"detail": f"no static file {name!r}"}, status_code=404)
    return FileResponse(STATIC / name, media_type=STATIC_FILES[name], headers={"Cache-Control": "no-cache"})


# ---------------------------------------------------------------------------------------------- pages


@router.get("", response_class=HTMLResponse, dependencies=[PageAccess])
def experiments_page(request: Request) -> HTMLResponse:
    """Every experiment with its status, traffic so far and the sample-ratio flag."""
    rows, oldest = [], 0.0
    for info in request.app.state.service.list():
        summary, age = _summary(request, info)
        rows.append(experiment_row(info, summary))
        oldest = max(oldest, age)
    return _page(request, "experiments.html", title="Experiments", rows=rows, age=oldest)


@dataclass(frozen=True)
class SlotView:
    """Everything one slot's section shows."""

    slot: str
    control: str
    variants: list[Any]
    analysis: Any | None
    skipped: str | None
    rate_rows: list[Any]
    metrics: list[str]
    figures: list[str]
    policy_figure: str | None


def _experiment_context(
    request: Request, info: ExperimentInfo, alpha: float, correction: str
) -> dict[str, Any]:
    service = request.app.state.service
    summary = service.summarize(info.key)  # fresh (this may run as a background refresh); shared below
    results_cache(request).put(("summary", info.key, info.version), summary)
    results: ExperimentResults = analyze_summary(summary, alpha=alpha, correction=correction)
    slot_to_analysis = {a.slot: a for a in results.analyses}
    history = service.policy_history(info.key) if summary.design in ADAPTIVE_DESIGNS else []
    policy_version = history[-1].version if history else None
    learned = history[-1].learned_decisions if history else 0
    points = policy_points(summary, history)
    slots = []
    for slot, spec_slot in info.spec.slots.items():
        analysis = slot_to_analysis.get(slot)
        metrics = rate_metrics(summary, analysis)
        figures = [figure_json(allocation_figure(summary.daily, slot, summary.slots[slot]))]
        if summary.daily:
            primary = analysis.primary_metric if analysis is not None else None
            shown = [primary] if primary in metrics else metrics[:1]
            figures += [figure_json(rates_figure(summary.daily, slot, m, alpha)) for m in shown]
        if analysis is not None and analysis.arms:
            figures.append(figure_json(posterior_figure(analysis)))
        policy = None
        if points:
            policy = figure_json(policy_figure(points, slot))
        slots.append(SlotView(
            slot=slot, control=summary.control[slot], variants=list(spec_slot.variants), analysis=analysis,
            skipped=results.skipped.get(slot), rate_rows=rate_rows(summary.arms, slot, metrics, alpha),
            metrics=metrics, figures=figures, policy_figure=policy,
        ))
    return {
        "info": info, "summary": summary, "slots": slots, "traffic": traffic(summary),
        "srm": srm_flag(summary),
        "adaptive": summary.design in ADAPTIVE_DESIGNS, "policy_version": policy_version,
        "learned_decisions": learned, "explored_days": explored_days(summary),
        "alpha": alpha, "correction": correction,
        "computed_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
    }


@router.get("/experiments/{key}", response_class=HTMLResponse, dependencies=[PageAccess])
def experiment_page(
    request: Request,
    key: str,
    alpha: Annotated[float, Query(gt=0, lt=1)] = 0.05,
    correction: Literal["holm", "bh", "none"] = "holm",
) -> HTMLResponse:
    """One experiment: variants, allocation, rates, Bayesian and sequential results, lifts, guardrails,
    the decision in words, and for bandits what the policy has learned."""
    try:
        info = request.app.state.service.get(key)
    except NotFound:
        return _not_found(request, f"experiment {key!r}")
    context, age = results_cache(request).get(
        ("page", key, info.version, alpha, correction),
        lambda: _experiment_context(request, info, alpha, correction),
    )
    return _page(request, "experiment.html", title=info.spec.name or key, age=age, **context)


@router.get("/power", response_class=HTMLResponse, dependencies=[PageAccess])
def power_page(request: Request) -> HTMLResponse:
    """The power calculator: answers as you type, with its power curve."""
    return _page(request, "power.html", title="Power calculator")


@router.post("/power/curve", dependencies=[Depends(require_call_access)])
def power_curve_figure(body: RatePowerRequest) -> dict[str, Any]:
    """The plan of ``POST /v1/power/rate`` and its power curve over the control-arm size, as a plotly figure.

    Errors are the analysis layer's (a 422 naming the field), as on ``/v1/power/rate``.
    """
    options = body.model_dump()
    plan = plan_to_dict(solve_rate_sample_size(**options))
    curve = power_curve(
        "rate", over="n", baseline=body.baseline, mde=body.mde, relative=body.relative,
        target_power=body.power, alpha=body.alpha, alternative=body.alternative, arms=body.arms,
        ratio=body.ratio, method=body.method, correction=body.correction,
    )
    return {"plan": plan, "curve": curve.to_dict(), "figure": json.loads(plot_power_curve(curve).to_json())}


@dataclass(frozen=True)
class ReportFile:
    """An HTML report in the reports directory."""

    name: str
    modified: str
    size_kb: float


@router.get("/reports", response_class=HTMLResponse, dependencies=[PageAccess])
def reports_page(request: Request) -> HTMLResponse:
    """The replay and simulation reports in the reports directory, newest first."""
    folder = reports_dir(request)
    found = folder.glob("*.html") if folder.is_dir() else []
    files = sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)
    listed = [
        ReportFile(p.name, datetime.fromtimestamp(p.stat().st_mtime, UTC).strftime("%Y-%m-%d %H:%M UTC"),
                   p.stat().st_size / 1024)
        for p in files
    ]
    return _page(request, "reports.html", title="Reports", reports=listed, folder=str(folder),
                 exists=folder.is_dir())


@router.get("/reports/{name}", dependencies=[PageAccess])
def report_file(request: Request, name: str) -> Response:
    """One report, as written by ``sendlab replay --html`` or ``sendlab simulate --html``."""
    folder = reports_dir(request)
    candidate = folder / name
    if (
        "/" in name or "\\" in name or name.startswith(".") or not name.endswith(".html")
        or not candidate.is_file() or candidate.resolve().parent != folder.resolve()
    ):
        return _not_found(request, f"report {name!r}")
    return FileResponse(candidate, media_type="text/html")
