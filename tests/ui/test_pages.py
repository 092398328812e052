"""The pages through FastAPI's TestClient: access, the numbers they show, the power curve, reports."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from analysis.stats import SampleStats
from api.ui.access import safe_next
from api.ui.cache import TimedCache
from api.ui.routes import PLOTLY_JS
from api.ui.views import explored_days, policy_points, rate_rows, srm_flag, traffic
from experiments.models import ArmSummary, DailyArmSummary, ExperimentSummary, PolicySnapshotInfo
from tests.ui.conftest import ADMIN_KEY, SEND_KEY, build_app
from tests.ui.login import FORM, login_token, post_key

POWER = {"baseline": 0.03, "mde": 0.1, "relative": True, "daily": 50000}


def _summary(counts: list[int], shares: list[float], *, design: str = "ab",
             fallbacks: dict[str, int] | None = None) -> ExperimentSummary:
    variants = [f"v{i}" for i in range(len(counts))]
    arms = [ArmSummary("subject", v, s, {"click": n // 20}, SampleStats(n, n / 20, n / 20))
            for v, n, s in zip(variants, counts, shares, strict=True)]
    return ExperimentSummary(key="k", version=1, design=design, slots={"subject": variants},
                             control={"subject": "v0"}, arms=arms, combinations=[], holdout=None, daily=[],
                             guardrails=[], reward_events=["click"], fallbacks=fallbacks or {})


@pytest.fixture(scope="module")
def client(seeded: Any, tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    reports = tmp_path_factory.mktemp("reports-unit")
    app = build_app(seeded, keys=False, reports=reports)
    return TestClient(app)


@pytest.fixture(scope="module")
def keyed(seeded: Any) -> TestClient:
    return TestClient(build_app(seeded, keys=True), follow_redirects=False)


# ------------------------------------------------------------------------------------ views (pure)


def test_srm_flag_is_the_chi_square_test_of_the_counts() -> None:
    # Reference: scipy.stats.chisquare([5000, 5400], [5200, 5200]), p = 8.8e-5 < 0.001 (flagged)
    flagged = srm_flag(_summary([5000, 5400], [0.5, 0.5]))
    assert flagged.status == "flagged" and flagged.slot == "subject"
    assert flagged.p_value == pytest.approx(stats.chisquare([5000, 5400], [5200, 5200]).pvalue, rel=1e-9)
    # Reference: scipy.stats.chisquare([3300, 6700], [3333.3, 6666.7]) for a 1:2 design, p = 0.39
    ok = srm_flag(_summary([3300, 6700], [1.0, 2.0]))
    assert ok.status == "ok"
    assert ok.p_value == pytest.approx(stats.chisquare([3300, 6700], [10000 / 3, 20000 / 3]).pvalue, rel=1e-9)


def test_srm_flag_does_not_apply_to_bandits_or_empty_experiments() -> None:
    assert srm_flag(_summary([10, 5000], [0.5, 0.5], design="bandit")).status == "not applicable"
    assert srm_flag(_summary([0, 0], [0.5, 0.5])).status == "too early"


def test_srm_flag_does_not_apply_to_one_variant() -> None:
    # one variant has no split to check, however much traffic it has: never "too early"
    for counts in ([500], [0]):
        flag = srm_flag(_summary(counts, [1.0]))
        assert (flag.status, flag.message) == ("not applicable", "one variant per slot: no split to check")
    assert srm_flag(_summary([0, 0], [0.5, 0.5])).status == "too early"  # two variants: still to come


def test_traffic_counts_learnable_decisions_and_fallbacks() -> None:
    assert traffic(_summary([100, 120], [1, 1], fallbacks={"holdout": 7, "paused": 3})) == 230


def test_rate_rows_use_wilson_intervals() -> None:
    rows = rate_rows(_summary([1000, 2000], [1, 1]).arms, "subject", ["click"], alpha=0.05)
    for row, n in zip(rows, [1000, 2000], strict=True):
        cell = row.metric_to_cell["click"]
        # Reference: statsmodels proportion_confint(n // 20, n, alpha=0.05, method="wilson")
        low, high = proportion_confint(n // 20, n, alpha=0.05, method="wilson")
        assert cell.rate == pytest.approx(0.05)
        assert cell.ci == pytest.approx((low, high), rel=1e-9)


def test_timed_cache_recomputes_after_its_ttl() -> None:
    now = [100.0]
    cache = TimedCache(10.0, clock=lambda: now[0])
    calls = []

    def compute() -> int:
        calls.append(1)
        return len(calls)

    assert cache.get("a", compute) == (1, 0.0)
    now[0] = 109.0
    assert cache.get("a", compute) == (1, 9.0)
    now[0] = 110.0
    assert cache.get("a", compute) == (2, 0.0)

    def broken() -> int:
        raise RuntimeError("store down")

    with pytest.raises(RuntimeError):
        cache.get("b", broken)
    assert cache.get("b", compute) == (3, 0.0)  # nothing was stored for the failure


def test_timed_cache_serves_stale_values_while_one_refresh_runs() -> None:
    now = [0.0]
    jobs: list[Any] = []
    cache = TimedCache(10.0, stale_seconds=100.0, clock=lambda: now[0], spawn=jobs.append)
    values = iter(range(1, 100))

    def compute() -> int:
        return next(values)

    assert cache.get("a", compute) == (1, 0.0)
    now[0] = 50.0
    assert cache.get("a", compute) == (1, 50.0) and len(jobs) == 1  # stale: answered at once
    now[0] = 60.0
    assert cache.get("a", compute) == (1, 60.0) and len(jobs) == 1  # one refresh at a time
    jobs.pop()()  # the refresh finishes at t = 60
    now[0] = 65.0
    assert cache.get("a", compute) == (2, 5.0)
    now[0] = 200.0  # older than stale_seconds: computed during the request
    assert cache.get("a", compute) == (3, 0.0) and not jobs

    def broken() -> int:
        raise RuntimeError("store down")

    now[0] = 250.0
    assert cache.get("a", broken) == (3, 50.0)
    jobs.pop()()  # fails: the old value stays and a later request may try again
    assert cache.get("a", compute) == (3, 50.0) and len(jobs) == 1


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"ttl_seconds": -1.0}, "ttl_seconds"), ({"ttl_seconds": float("nan")}, "ttl_seconds"),
    ({"stale_seconds": -5.0}, "stale_seconds"),
    ({"max_entries": 0}, "max_entries"),
])
def test_timed_cache_rejects_bad_settings(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TimedCache(**kwargs)


@pytest.mark.parametrize(("target", "expected"), [
    ("/ui/experiments/a", "/ui/experiments/a"), ("//evil.example/ui", "/ui"), ("https://evil.example", "/ui"),
    ("/docs", "/ui"), (None, "/ui"), ("/ui\\..\\x", "/ui"),
])
def test_login_only_returns_to_the_pages(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


# ------------------------------------------------------------------------------------ access


def test_pages_redirect_to_the_key_form_when_the_service_has_keys(keyed: TestClient) -> None:
    for path in ("/ui", "/ui/experiments/subject-ab", "/ui/power", "/ui/reports"):
        answer = keyed.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/ui/login?next=")
    assert _log_in(keyed, SEND_KEY).status_code == 401  # the send key may not read results
    assert keyed.get("/ui").status_code == 303
    keyed.cookies.set("sendlab_key", ADMIN_KEY)  # the key itself in a cookie opens nothing
    assert keyed.get("/ui").status_code == 303
    assert _log_in(keyed, ADMIN_KEY).status_code == 303
    assert keyed.get("/ui").status_code == 200
    keyed.cookies.clear()


def _log_in(app: TestClient, key: str) -> Any:
    return post_key(app, key)


def test_key_form_checks_the_key_and_sets_the_cookie(keyed: TestClient) -> None:
    wrong = post_key(keyed, "nope", "/ui/power")
    assert wrong.status_code == 401 and "not the admin key" in wrong.text
    right = post_key(keyed, ADMIN_KEY, "/ui/power")
    assert right.status_code == 303 and right.headers["location"] == "/ui/power"
    cookie = right.headers["set-cookie"]
    assert cookie.startswith("sendlab_session=") and ADMIN_KEY not in cookie
    assert "samesite=strict" in cookie.lower() and "httponly" in cookie.lower()
    keyed.cookies.clear()


def test_the_key_form_refuses_a_post_without_its_token(keyed: TestClient) -> None:
    """Login CSRF: another site's form posting its own key into this browser opens no session."""
    shown = keyed.get("/ui/login")
    cookie = shown.headers["set-cookie"]
    assert cookie.startswith("sendlab_login=") and "httponly" in cookie.lower()
    assert "samesite=strict" in cookie.lower() and "path=/ui/login" in cookie.lower()
    token = login_token(keyed)
    for body in (f"key={ADMIN_KEY}&next=%2Fui", f"key={ADMIN_KEY}&next=%2Fui&csrf_token=forged"):
        answer = keyed.post("/ui/login", content=body, headers=FORM)
        assert answer.status_code == 403 and "out of date" in answer.text
        assert "sendlab_session" not in answer.headers.get("set-cookie", "")
    keyed.cookies.clear()  # the right token without the form's cookie (another browser) is refused too
    answer = keyed.post("/ui/login", content=f"key={ADMIN_KEY}&next=%2Fui&csrf_token={token}", headers=FORM)
    assert answer.status_code == 403
    assert post_key(keyed, ADMIN_KEY).status_code == 303
    keyed.cookies.clear()


@pytest.mark.parametrize("body", [b"key=%D0%BA&next=%2Fui", b"key=\xff\xfe&next=%2Fui",
                                  b"key=a%0Ab&next=%2Fui"])
def test_a_key_a_cookie_cannot_carry_is_refused_not_a_500(client: TestClient, keyed: TestClient,
                                                           body: bytes) -> None:
    # open service (any key opens the pages) and keyed service alike: no cookie is set from it
    for app in (client, keyed):
        token = login_token(app).encode()
        answer = app.post("/ui/login", content=body + b"&csrf_token=" + token, headers=FORM)
        assert answer.status_code == 401 and "printable ASCII" in answer.text
        assert "set-cookie" not in answer.headers


def test_power_curve_call_needs_a_session_and_its_csrf_token(keyed: TestClient) -> None:
    assert keyed.post("/ui/power/curve", json=POWER).status_code == 401
    _log_in(keyed, ADMIN_KEY)
    assert keyed.post("/ui/power/curve", json=POWER).status_code == 403  # a forged call: no CSRF token
    assert keyed.post("/ui/power/curve", json=POWER, headers={"X-CSRF-Token": "forged"}).status_code == 403
    token = re.search(r'<meta name="csrf-token" content="([^"]+)">', keyed.get("/ui/power").text).group(1)
    assert keyed.post("/ui/power/curve", json=POWER, headers={"X-CSRF-Token": token}).status_code == 200
    keyed.cookies.clear()


def test_static_assets_are_local_and_open(keyed: TestClient) -> None:
    js = keyed.get("/ui/static/plotly.min.js")
    assert js.status_code == 200 and js.content == PLOTLY_JS.read_bytes()
    assert keyed.get("/ui/static/ui.js").status_code == 200
    assert keyed.get("/ui/static/../routes.py").status_code == 404
    assert keyed.get("/ui/static/secret.py").status_code == 404


# ------------------------------------------------------------------------------------ pages


def test_pages_load_no_script_from_elsewhere(client: TestClient) -> None:
    for path in ("/ui", "/ui/experiments/subject-ab", "/ui/power", "/ui/reports"):
        html = client.get(path).text
        assert 'src="/ui/static/plotly.min.js"' in html
        sources = re.findall(r'<(?:script|link|img)[^>]*\b(?:src|href)="([^"]*)"', html)
        assert sources and all(s.startswith("/") and not s.startswith("//") for s in sources), sources


def test_experiment_page_shows_the_api_results(client: TestClient) -> None:
    page = client.get("/ui/experiments/subject-ab").text
    results = client.get("/v1/experiments/subject-ab/results").json()
    assert results["comparisons"]
    for c in results["comparisons"]:
        assert f"{c['lift']:+.2%}" in page
        assert f"{c['ci'][0]:+.2%} to {c['ci'][1]:+.2%}" in page
    for slot, decision in results["decisions"].items():
        assert decision["reason"] in page, slot
    assert "(p-values adjusted by holm)" in page
    bh = client.get("/ui/experiments/subject-ab?correction=bh").text
    assert "(p-values adjusted by bh)" in bh


def test_unknown_experiment_is_a_404_page(client: TestClient) -> None:
    answer = client.get("/ui/experiments/no-such-thing")
    assert answer.status_code == 404 and "no-such-thing" in answer.text


def test_power_curve_agrees_with_the_plan(client: TestClient) -> None:
    plan = client.post("/v1/power/rate", json=POWER).json()
    answer = client.post("/ui/power/curve", json=POWER).json()
    assert answer["plan"] == plan
    curve = answer["curve"]
    # the plan rounds the exact size up; the curve reaches the target power at the exact size
    assert curve["x_at_target"] == pytest.approx(plan["details"]["n_exact"], rel=1e-6)
    assert curve["x_at_target"] <= plan["per_arm"] < curve["x_at_target"] + 1
    powers = curve["power"]
    assert all(a <= b for a, b in zip(powers, powers[1:], strict=False))  # more recipients, more power
    assert answer["figure"]["data"][0]["y"] == powers


def test_power_curve_names_the_bad_field(client: TestClient) -> None:
    answer = client.post("/ui/power/curve", json={**POWER, "baseline": 1.5})
    assert answer.status_code == 422 and "baseline" in answer.text


def test_reports_are_listed_newest_first_and_only_html_inside_the_folder(client: TestClient) -> None:
    folder = Path(client.app.state.settings.reports_dir)  # type: ignore[attr-defined]
    (folder / "old.html").write_text("<p>old</p>")
    (folder / "new.html").write_text("<p>new</p>")
    (folder / "notes.txt").write_text("not a report")
    os.utime(folder / "old.html", (1_000_000, 1_000_000))
    listing = client.get("/ui/reports").text
    assert listing.index("new.html") < listing.index("old.html") and "notes.txt" not in listing
    assert client.get("/ui/reports/new.html").text == "<p>new</p>"
    for bad in ("notes.txt", "..%2Fui.db", ".hidden.html", "missing.html"):
        assert client.get(f"/ui/reports/{bad}").status_code == 404, bad


def test_reports_page_says_when_the_folder_is_missing(seeded: Any, tmp_path: Path) -> None:
    app = build_app(seeded, keys=False, reports=tmp_path / "nowhere")
    assert "does not exist yet" in TestClient(app).get("/ui/reports").text


def test_list_counts_every_decision(client: TestClient, seeded: Any) -> None:
    page = client.get("/ui").text
    for info in seeded.list():
        expected = traffic(seeded.summarize(info.key))
        assert f"{expected:,}" in page


def test_list_says_not_applicable_for_a_one_variant_experiment(tmp_path: Path) -> None:
    from experiments.service import ExperimentService
    from experiments.spec import parse_spec
    from experiments.store import create_tables, make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'one.db'}")
    create_tables(engine)
    service = ExperimentService(engine, seed=1)
    only = {"variants": [{"id": "only", "content": "Hi"}]}
    service.create(parse_spec({"key": "one", "slots": {"subject": only}, "design": {"type": "ab"},
                               "consent": {"missing": "allow"}}))
    service.assign_batch("one", [(f"r{i}", {}) for i in range(500)])
    listing = TestClient(build_app(service, keys=False)).get("/ui")
    assert listing.status_code == 200
    (cell,) = re.findall(r'<td class="srm srm-([a-z-]+)"[^>]*>\s*([^<]*?)\s*</td>', listing.text)
    assert cell == ("not-applicable", "not applicable")


def test_new_experiment_page_renders_and_escapes_the_spec(tmp_path: Path) -> None:
    from experiments.service import ExperimentService
    from experiments.spec import parse_spec
    from experiments.store import create_tables, make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    create_tables(engine)
    service = ExperimentService(engine, seed=1)
    service.create(parse_spec({
        "key": "fresh", "name": "<b>bold</b> name",
        "slots": {"subject": {"variants": [{"id": "a", "content": "<script>alert(1)</script>"},
                                           {"id": "b", "content": "plain"}]}},
        "design": {"type": "ab"},
    }))
    client = TestClient(build_app(service, keys=False))
    listing = client.get("/ui")
    assert listing.status_code == 200 and "&lt;b&gt;bold&lt;/b&gt; name" in listing.text
    assert "too early" in listing.text  # no traffic: no sample-ratio verdict yet
    page = client.get("/ui/experiments/fresh")
    assert page.status_code == 200
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "Not analysed yet" in page.text


# ------------------------------------------------------------------------------------ is it learning?


def test_policy_points_sum_each_slots_variants_over_the_arms() -> None:
    summary = ExperimentSummary(key="k", version=2, design="bandit",
                                slots={"s": ["a", "b"], "c": ["x", "y", "z"]}, control={"s": "a", "c": "x"},
                                arms=[], combinations=[], holdout=None, daily=[], guardrails=[],
                                reward_events=["click"])
    at = datetime(2026, 3, 1, tzinfo=UTC)
    # arms: (a,x) (a,y) (a,z) (b,x) (b,y) (b,z), the last slot varying fastest
    probs = [0.05, 0.10, 0.15, 0.20, 0.25, 0.25]
    history = [
        PolicySnapshotInfo(1, 1, at, 0, [1 / 6] * 6),  # an older spec version: left out
        PolicySnapshotInfo(2, 2, at, 0, probs),
        PolicySnapshotInfo(3, 2, at, 10, None),  # no probabilities: left out
    ]
    (point,) = policy_points(summary, history)
    assert point.version == 2
    assert point.slot_to_marginals["s"] == pytest.approx({"a": 0.30, "b": 0.70})
    assert point.slot_to_marginals["c"] == pytest.approx({"x": 0.25, "y": 0.35, "z": 0.40})


def test_explored_days_count_each_decision_once() -> None:
    d1, d2 = date(2026, 3, 1), date(2026, 3, 2)
    daily = [
        DailyArmSummary(d2, "s", "a", 10, {}, 3), DailyArmSummary(d1, "s", "a", 4, {}, 1),
        DailyArmSummary(d1, "s", "b", 6, {}, 0), DailyArmSummary(d1, "c", "x", 10, {}, 1),  # second slot
    ]
    summary = ExperimentSummary(key="k", version=1, design="bandit", slots={"s": ["a", "b"], "c": ["x"]},
                                control={"s": "a", "c": "x"}, arms=[], combinations=[], holdout=None,
                                daily=daily, guardrails=[], reward_events=[])
    days = explored_days(summary)
    assert [(d.day, d.decisions, d.explored) for d in days] == [(d1, 10, 1), (d2, 10, 3)]
    assert days[1].share == pytest.approx(0.3)


def _text(page: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}">(.*?)</', page, re.S)
    assert found, element_id
    return found.group(1).strip()


def test_learning_section_shows_the_services_numbers(client: TestClient, seeded: Any) -> None:
    key = "subject-bandit"
    page = client.get(f"/ui/experiments/{key}").text
    summary = seeded.summarize(key)
    history = seeded.policy_history(key)
    assert "not reported" not in page
    assert _text(page, "policy-version") == str(history[-1].version)
    assert _text(page, "learned") == f"{history[-1].learned_decisions:,}"
    assert history[-1].learned_decisions > 0
    assert _text(page, "learnable") == f"{summary.learnable_decisions:,}"
    assert _text(page, "explored").startswith(f"{summary.explored_decisions:,}")
    assert 0 < summary.explored_decisions < summary.learnable_decisions
    share = summary.explored_decisions / summary.learnable_decisions
    assert _text(page, "explored-share") == f"{share:.1%}"
    cell = r'<td class="r">([\d,]+)</td>'
    rows = re.findall(rf"<tr><td>(\d{{4}}-\d\d-\d\d)</td>{cell}{cell}", page)
    assert sum(int(x.replace(",", "")) for _, _, x in rows) == summary.explored_decisions
    assert sum(int(n.replace(",", "")) for _, n, _ in rows) == summary.learnable_decisions
    # the chart: one line per variant, one point per policy version; its last point is the current
    # policy's marginal, which the service reports (by its own path) as each arm's intended share
    found = re.search(r'id="policy-subject"><div class="chart">'
                      r'<script type="application/json" class="figure">(.*?)</script>', page, re.S)
    assert found
    figure = json.loads(found.group(1))
    assert [t["name"] for t in figure["data"]] == summary.slots["subject"]
    assert all(len(t["y"]) == len(history) for t in figure["data"])
    shares = {a.variant: a.intended_share for a in summary.arms if a.slot == "subject"}
    for trace in figure["data"]:
        assert trace["y"][-1] == pytest.approx(shares[trace["name"]], abs=1e-12)
        assert trace["y"][0] == pytest.approx(1 / 3, abs=0.02)  # the prior: 10,000 draws, 4 standard errors


def _figure(page: str, element_id: str) -> dict[str, Any]:
    found = re.search(rf'id="{element_id}"><div class="chart">'
                      r'<script type="application/json" class="figure">(.*?)</script>', page, re.S)
    assert found, element_id
    return json.loads(found.group(1))


def test_contextual_learning_chart_shows_each_versions_decisions(client: TestClient, seeded: Any) -> None:
    key = "spring-sale"
    page = client.get(f"/ui/experiments/{key}").text
    summary = seeded.summarize(key)
    learning = seeded.learning(key)
    history = seeded.policy_history(key)
    assert 'class="policy"' not in page  # a contextual policy has no probabilities of its own
    assert _text(page, "explored").startswith(f"{summary.explored_decisions:,}")
    # the versions that made decisions: each of the three sends was made by the version learned before it
    versions = [v for v in learning.versions if v.decisions]
    version_to_time = {h.version: h.created_at for h in history}
    assert all(v.created_at == version_to_time[v.policy_version] for v in versions)
    assert len(versions) == 3 and sum(v.decisions for v in versions) == summary.learnable_decisions
    for slot in summary.slots:
        figure = _figure(page, f"versions-{slot}")
        names = [t["name"] for t in figure["data"]]
        assert names == [*summary.slots[slot], "explored"]
        for trace in figure["data"]:
            assert trace["x"] == [v.created_at.isoformat() for v in versions]
            assert [c[0] for c in trace["customdata"]] == [v.policy_version for v in versions]
            if trace["name"] == "explored":
                expected = [v.explored / v.decisions for v in versions]
            else:
                expected = [v.slot_to_variant_decisions[slot][trace["name"]] / v.decisions for v in versions]
            assert trace["y"] == pytest.approx(expected, abs=1e-12)
        # every version's variant shares add up to one: each decision chose one variant per slot
        shares = [t["y"] for t in figure["data"] if t["name"] != "explored"]
        assert [sum(col) for col in zip(*shares, strict=True)] == pytest.approx([1.0] * len(versions))
    explored = next(t["y"] for t in _figure(page, "versions-subject")["data"] if t["name"] == "explored")
    assert any(0 < x < 1 for x in explored)  # linear Thompson sampling explores, less than always


@pytest.mark.parametrize("key", ["spring-sale", "subject-bandit"])
def test_learned_decisions_and_reward_are_the_services(client: TestClient, seeded: Any, key: str) -> None:
    page = client.get(f"/ui/experiments/{key}").text
    learning = seeded.learning(key)
    assert learning.learned_decisions == seeded.policy_history(key)[-1].learned_decisions > 0
    assert _text(page, "learned") == f"{learning.learned_decisions:,}"
    assert learning.learned_reward > 0
    assert float(_text(page, "learned-reward")) == pytest.approx(learning.learned_reward, rel=1e-5)
    mean = learning.learned_reward / learning.learned_decisions
    assert float(_text(page, "learned-reward-mean")) == pytest.approx(mean, rel=1e-3)


def test_list_srm_flag_is_the_experiment_pages(client: TestClient, seeded: Any) -> None:
    listing = client.get("/ui").text
    flag = srm_flag(seeded.summarize("subject-ab"))
    assert flag.status == "ok" and flag.p_value is not None
    assert flag.p_value >= 1e-4  # printed with four decimals
    pattern = r'<code>subject-ab</code>.*?class="srm srm-ok"[^>]*>\s*ok \(p = ([\d.]+)\)'
    row = re.search(pattern, listing, re.S)
    assert row and row.group(1) == f"{flag.p_value:.4f}"


def test_pages_say_how_old_their_numbers_are(seeded: Any) -> None:
    app = build_app(seeded, keys=False)
    client = TestClient(app)  # no lifespan: no refresher, numbers computed on the first visit
    for path in ("/ui", "/ui/experiments/subject-ab"):
        page = client.get(path).text
        assert int(_text(page, "age-seconds")) == 0
        assert "refreshed in the background" not in page
