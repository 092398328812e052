"""The analyst's pages at ``/ui``: experiments, one experiment's results, the power calculator, reports.

Pages are rendered on the server (Jinja2); charts are plotly figures drawn in the browser by the
plotly.js that ships with the installed ``plotly`` package, served here (never a CDN). The numbers a
page shows are read from the store once and cached (:mod:`api.ui.numbers`), kept warm by the
background refresher (:mod:`api.ui.lifecycle`); a page's content is cached per set of numbers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs

import plotly
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response

from analysis.adaptive import AS_ALLOCATED_NOTE
from analysis.power import solve_rate
from analysis.power.curves import power_curve
from analysis.power.plots import plot_power_curve
from api.adaptive_html import adaptive_html
from api.convert import plan_to_dict
from api.models.power import RatePowerRequest
from api.results import AlphaQuery, exclusion_note
from api.sessions import (
    CSRF_FIELD,
    LOGIN_COOKIE,
    LOGIN_FORM_SECONDS,
    SESSION_COOKIE,
    SESSION_SECONDS,
    csrf_token,
    issue_login_nonce,
    issue_session,
    login_token,
    login_token_is_valid,
)
from api.ui.access import (
    LOGIN_PATH,
    csrf_holds,
    key_opens_pages,
    require_call_access,
    require_page_access,
    safe_next,
)
from api.ui.breakdown import breakdown
from api.ui.cache import TimedCache
from api.ui.charts import (
    allocation_figure,
    drift_figure,
    figure_json,
    policy_figure,
    posterior_figure,
    rates_figure,
    version_figure,
)
from api.ui.numbers import TRAFFIC_KEY, ExperimentNumbers, cached_numbers, cached_traffic
from api.ui.pages import render
from api.ui.views import (
    experiment_row,
    explored_days,
    policy_points,
    rate_metrics,
    rate_rows,
    srm_flag,
    traffic,
    version_shares,
)
from experiments.adaptive_block import analyze_estimated
from experiments.drift_block import DRIFT_NOTE
from experiments.errors import NotFound
from experiments.result_analysis import ADAPTIVE_DESIGNS, ExperimentResults, analyze_summary

STATIC = Path(__file__).resolve().parent / "static"
PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
STATIC_FILES = {"ui.css": "text/css", "ui.js": "text/javascript"}
CACHE_SECONDS = 15.0  # served as is
STALE_SECONDS = 600.0  # served at once while a background refresh runs
#: What the key form says when a post does not carry the token of the form this browser was shown.
STALE_LOGIN_FORM = "This form is out of date or did not come from this page: type the key again."
PAGE_ENTRIES = 64  # page contents kept (each is drawn from one set of numbers)

router = APIRouter(prefix="/ui", include_in_schema=False)
PageAccess = Depends(require_page_access)


# ---------------------------------------------------------------------------------------------- helpers


def results_cache(app: FastAPI) -> TimedCache:
    """The app's cache of the numbers read from the store (made on first use, kept on ``app.state``)."""
    cache = getattr(app.state, "ui_cache", None)
    if cache is None:
        cache = app.state.ui_cache = TimedCache(CACHE_SECONDS, stale_seconds=STALE_SECONDS)
    return cache


def page_cache(app: FastAPI) -> TimedCache:
    """The app's cache of page contents, each keyed by the numbers it was drawn from (kept on
    ``app.state``)."""
    cache = getattr(app.state, "ui_pages", None)
    if cache is None:
        cache = app.state.ui_pages = TimedCache(0.0, max_entries=PAGE_ENTRIES)
    return cache


def reports_dir(request: Request) -> Path:
    """Where replay and simulation HTML reports are read from: the settings' ``reports_dir``
    (``SENDLAB_REPORTS_DIR``, default ``./reports``)."""
    return Path(request.app.state.settings.reports_dir)


def page_response(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    settings = request.app.state.settings
    refresher = getattr(request.app.state, "ui_refresher", None)
    refresh_seconds = refresher.interval_seconds if refresher is not None and refresher.running else None
    csrf = csrf_token(settings, request.cookies.get(SESSION_COOKIE)) if not settings.open else ""
    html = render(template, auth_on=not settings.open, path=request.url.path,
                  refresh_seconds=refresh_seconds, csrf=csrf, **context)
    return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})


def not_found(request: Request, what: str) -> HTMLResponse:
    return page_response(request, "missing.html", status_code=404, title="Not found", what=what)


# ---------------------------------------------------------------------------------------------- access


def login_page(
    request: Request, target: str, status_code: int = 200, error: str | None = None, *, fresh: bool = False
) -> HTMLResponse:
    """The key form carrying the token of the browser's login nonce (a new nonce in the cookie when it has
    none, or when ``fresh``)."""
    settings = request.app.state.settings
    nonce = (None if fresh else request.cookies.get(LOGIN_COOKIE)) or issue_login_nonce()
    response = page_response(request, "login.html", status_code=status_code, title="Enter a key", next=target,
                             error=error, login_csrf=login_token(settings, nonce))
    if nonce != request.cookies.get(LOGIN_COOKIE):
        response.set_cookie(LOGIN_COOKIE, nonce, max_age=LOGIN_FORM_SECONDS, httponly=True, samesite="strict",
                            path=LOGIN_PATH, secure=request.url.scheme == "https")
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/ui") -> HTMLResponse:  # noqa: A002 - the query's name
    """The key form."""
    return login_page(request, safe_next(next))


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    """Check the form's token, then the typed key against the admin key; open a session and go on, or
    say why not."""
    form = parse_qs((await request.body()).decode("utf-8", errors="replace"))
    key = (form.get("key") or [""])[0].strip()
    target = safe_next((form.get("next") or ["/ui"])[0])
    settings = request.app.state.settings
    if not settings.open and not login_token_is_valid(settings, request.cookies.get(LOGIN_COOKIE),
                                                      (form.get(CSRF_FIELD) or [""])[0]):
        return login_page(request, target, status_code=403, fresh=True, error=STALE_LOGIN_FORM)
    if not (key.isascii() and key.isprintable()):  # a cookie (and a Bearer header) carries ASCII only
        return login_page(request, target, status_code=401,
                          error="A key is printable ASCII: this one is not the admin key.")
    if not key_opens_pages(settings, key):
        if key:
            request.app.state.throttle.record_failure(request.client.host if request.client else "unknown")
        return login_page(request, target, status_code=401,
                          error="This key is not the admin key." if key else "Type the admin key.")
    response = RedirectResponse(target, status_code=303)
    if not settings.open:
        response.set_cookie(SESSION_COOKIE, issue_session(settings), max_age=SESSION_SECONDS, httponly=True,
                            samesite="strict", path="/ui", secure=request.url.scheme == "https")
        response.delete_cookie(LOGIN_COOKIE, path=LOGIN_PATH)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session (the form carries the session's CSRF token)."""
    form = parse_qs((await request.body()).decode("utf-8", errors="replace"))
    if not csrf_holds(request, (form.get(CSRF_FIELD) or [""])[0]):
        return JSONResponse({"detail": "missing or wrong CSRF token: reload the page"}, status_code=403)
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/ui")
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
    service = request.app.state.service
    infos = service.list()
    cache = results_cache(request.app)
    counts, age = cached_traffic(cache, service)
    key_to_counts = {c.key: c for c in counts}
    if any(key_to_counts.get(i.key) is None or key_to_counts[i.key].version != i.version for i in infos):
        counts = service.traffic()  # an experiment or a version newer than the cached counts
        cache.put(TRAFFIC_KEY, counts)
        key_to_counts, age = {c.key: c for c in counts}, 0.0
    rows = [experiment_row(i, key_to_counts[i.key]) for i in infos if i.key in key_to_counts]
    return page_response(request, "experiments.html", title="Experiments", rows=rows, age=age)


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
    version_figure: str | None


#: The drift table lists the last this many judged groups (the chart draws every one): a policy that
#: learns every few thousand decisions is judged thousands of times, and a table that long neither reads
#: nor renders well.
DRIFT_TABLE_ROWS = 60


def experiment_context(numbers: ExperimentNumbers, alpha: float, correction: str) -> dict[str, Any]:
    """What the experiment page shows, from the numbers read from the store: the analysis, the tables
    and the figures (no SQL here)."""
    info, summary, learning = numbers.info, numbers.summary, numbers.learning
    results: ExperimentResults = analyze_summary(summary, alpha=alpha, correction=correction)
    adaptive_results = analyze_estimated(numbers.adaptive, summary, alpha=alpha,
                                         correction=correction)  # type: ignore[arg-type]
    slot_to_analysis = {a.slot: a for a in results.analyses}
    history = numbers.history
    points = policy_points(summary, history)
    versions = learning.versions if learning is not None and summary.design == "contextual" else []
    drift = numbers.drift
    drift_chart = figure_json(drift_figure(drift.total)) if drift is not None and drift.total.points else None
    slots = []
    for slot, spec_slot in info.spec.slots.items():
        analysis = slot_to_analysis.get(slot)
        metrics = rate_metrics(summary, analysis)
        order = summary.slots[slot]  # the spec's order: it gives each variant its colour on every chart
        figures = [figure_json(allocation_figure(summary.daily, slot, order))]
        if summary.daily:
            primary = analysis.primary_metric if analysis is not None else None
            shown = [primary] if primary in metrics else metrics[:1]
            figures += [figure_json(rates_figure(summary.daily, slot, m, alpha, order)) for m in shown]
        if analysis is not None and analysis.arms:
            figures.append(figure_json(posterior_figure(analysis, order)))
        policy = figure_json(policy_figure(points, slot, order)) if points else None
        shares = version_shares(versions, slot)
        by_version = figure_json(version_figure(shares, slot, order)) if shares else None
        slots.append(SlotView(
            slot=slot, control=summary.control[slot], variants=list(spec_slot.variants), analysis=analysis,
            skipped=results.skipped.get(slot), rate_rows=rate_rows(summary.arms, slot, metrics, alpha),
            metrics=metrics, figures=figures, policy_figure=policy, version_figure=by_version,
        ))
    return {
        "summary": summary, "slots": slots, "traffic": traffic(summary), "srm": srm_flag(summary),
        "adaptive": summary.design in ADAPTIVE_DESIGNS,
        "adaptive_section": None if adaptive_results is None else adaptive_html(adaptive_results),
        "as_allocated_note": AS_ALLOCATED_NOTE,
        "policy_version": history[-1].version if history else None,
        "learning": learning, "explored_days": explored_days(summary),
        "alpha": alpha, "correction": correction, "factorials": results.factorials,
        "exclusions": exclusion_note(summary), "drift": drift, "drift_figure": drift_chart,
        "drift_note": DRIFT_NOTE, "drift_table_rows": DRIFT_TABLE_ROWS,
        "computed_at": numbers.computed_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
    }


def page_key(numbers: ExperimentNumbers, alpha: float, correction: str) -> tuple[Any, ...]:
    """The page cache's key of an experiment page drawn from ``numbers``."""
    return ("page", numbers.info.key, numbers.info.version, alpha, correction, numbers.computed_at)


@router.get("/experiments/{key}", response_class=HTMLResponse, dependencies=[PageAccess])
def experiment_page(
    request: Request,
    key: str,
    alpha: AlphaQuery = 0.05,
    correction: Literal["holm", "bh", "none"] = "holm",
    segment: Annotated[str | None, Query(max_length=64)] = None,
    covariate: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    """One experiment: variants, allocation, rates, Bayesian and sequential results, lifts, guardrails,
    the decision in words, for adaptive designs what the policy has learned, the drift monitor, and on
    request the results by a segment or CUPED-adjusted by a covariate."""
    service = request.app.state.service
    try:
        info = service.get(key)
    except NotFound:
        return not_found(request, f"experiment {key!r}")
    numbers, age = cached_numbers(results_cache(request.app), service, info)
    context = page_cache(request.app).remember(
        page_key(numbers, alpha, correction), lambda: experiment_context(numbers, alpha, correction)
    )
    extra = breakdown(service, info, segment=segment or None, covariate=covariate or None, alpha=alpha,
                      correction=correction)
    return page_response(request, "experiment.html", status_code=422 if extra.error else 200,
                         title=info.spec.name or key, info=info, age=age, breakdown=extra, **context)


@router.get("/power", response_class=HTMLResponse, dependencies=[PageAccess])
def power_page(request: Request) -> HTMLResponse:
    """The power calculator: answers as you type, with its power curve."""
    return page_response(request, "power.html", title="Power calculator")


@router.post("/power/curve", dependencies=[Depends(require_call_access)])
def power_curve_figure(body: RatePowerRequest) -> dict[str, Any]:
    """The plan of ``POST /v1/power/rate`` and its power curve over the control-arm size, as a plotly figure.

    Errors are the analysis layer's (a 422 naming the field), as on ``/v1/power/rate``.
    """
    options = body.model_dump()
    plan = plan_to_dict(solve_rate(**options))
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
    return page_response(request, "reports.html", title="Reports", reports=listed, folder=str(folder),
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
        return not_found(request, f"report {name!r}")
    return FileResponse(candidate, media_type="text/html")
