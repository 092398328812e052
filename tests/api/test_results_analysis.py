"""Results from the log end to end: the skewness note, results by segment and CUPED, over HTTP and the
command line, on SQLite and PostgreSQL, against the analysis library fed with statistics computed by
numpy from the raw rows the test sent."""

from __future__ import annotations

import html
import re
import zlib
from typing import Any

import numpy as np
import pytest
from scipy import stats as sps
from typer.testing import CliRunner

from analysis.cuped import cuped_compare
from analysis.results import ArmData, analyze_slot
from analysis.segments import analyze_segments
from analysis.stats import RegressionStats, SampleStats
from api.cli import app
from tests.api.conftest import ADMIN, SEND, make_spec

runner = CliRunner()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    return sqlite_url if request.param == "sqlite" else str(request.getfixturevalue("pg_url"))


def _revenue_spec(key: str) -> dict[str, Any]:
    return {
        "key": key,
        "slots": {"subject": {"variants": [{"id": "plain", "content": "Sale"},
                                           {"id": "urgent", "content": "Ends tonight"}]}},
        "design": {"type": "ab"},
        "reward": {"events": {}, "value": "revenue"},
        "record": ["clicks_30d", "country"],
    }


def _send(client, key: str, contexts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    recipients = [{"recipient_id": f"{key}-{i}", "context": c} for i, c in enumerate(contexts)]
    response = client.post(f"/v1/experiments/{key}/assign/batch", json={"recipients": recipients},
                           headers=SEND)
    assert response.status_code == 200, response.text
    return response.json()["decisions"]


def _post(client, events: list[dict[str, Any]]) -> None:
    for start in range(0, len(events), 5000):
        answer = client.post("/v1/outcomes", json={"events": events[start:start + 5000]}, headers=SEND)
        assert answer.status_code == 200, answer.text
        assert answer.json()["accepted"] == len(events[start:start + 5000])


def _revenue_experiment(client, key: str, revenue) -> dict[str, np.ndarray]:
    """An A/B test of 1,200 recipients; ``revenue(rng, variant)`` gives one decision's revenue (0: none)."""
    assert client.post("/v1/experiments", json=_revenue_spec(key), headers=ADMIN).status_code == 201
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    decisions = _send(client, key, [{"consent": True}] * 1200)
    events, rewards = [], {"plain": [], "urgent": []}
    for i, d in enumerate(decisions):
        variant = d["variants"]["subject"]["id"]
        value = float(revenue(rng, variant))
        if value:
            events.append({"event_id": f"{key}-r{i}", "decision_id": d["decision_id"], "type": "revenue",
                           "value": value})
        rewards[variant].append(value)
    _post(client, events)
    return {v: np.array(r) for v, r in rewards.items()}


def _skew_notes(body: dict[str, Any]) -> list[str]:
    return [n for a in body["analyses"] for c in a["comparisons"] for n in c["notes"] if "skewed" in n]


def test_the_skewness_note_fires_on_skewed_revenue_only(make_client, db_url, tmp_path) -> None:
    client = make_client(db_url)

    def skewed(rng, variant):  # a few large orders, most recipients buy nothing
        return round(float(rng.lognormal(4.0, 1.2)), 2) if rng.random() < 0.02 else 0.0

    def spread(rng, variant):  # everyone spends a little, symmetric
        return round(float(rng.uniform(5.0, 15.0)), 2)

    raw = _revenue_experiment(client, "skewed", skewed)
    _revenue_experiment(client, "even", spread)
    body = client.get("/v1/experiments/skewed/results", headers=ADMIN).json()
    notes = _skew_notes(body)
    assert len(notes) == 2  # one per arm of the only comparison
    for variant, values in raw.items():
        # Reference: scipy's biased (population) skewness of the arm's per-decision rewards.
        gamma = sps.skew(values, bias=True)
        needed = 355 * gamma**2
        assert values.size < needed
        (note,) = [n for n in notes if n.startswith(f"{variant}:")]
        assert f"skewness {gamma:.1f}" in note and f"about {int(np.ceil(needed)):,} units" in note
    assert any("values are skewed" in w for a in body["analyses"] for w in a["warnings"])
    even = client.get("/v1/experiments/even/results", headers=ADMIN).json()
    assert even["analyses"] and _skew_notes(even) == []

    html = tmp_path / "skewed.html"
    result = runner.invoke(app, ["analyze", "skewed", "--db", db_url, "--html", str(html)])
    assert result.exit_code == 0, result.output
    assert "values are skewed" in result.output
    assert "values are skewed" in html.read_text()
    report = client.get("/v1/experiments/skewed/report", headers=ADMIN)
    assert report.status_code == 200 and "values are skewed" in report.text
    result = runner.invoke(app, ["analyze", "even", "--db", db_url])
    assert result.exit_code == 0 and "skewed" not in result.output


def test_a_report_of_one_variant_says_there_is_nothing_to_compare(make_client, db_url, tmp_path) -> None:
    client = make_client(db_url)
    spec = {"key": "one", "slots": {"subject": {"variants": [{"id": "only", "content": "Hello"}]}},
            "design": {"type": "ab"}, "consent": {"missing": "allow"}}
    assert client.post("/v1/experiments", json=spec, headers=ADMIN).status_code == 201
    _send(client, "one", [{} for _ in range(500)])
    reason = "no slot of 'one' can be analysed yet (subject: only one variant: nothing to compare)"
    served = client.get("/v1/experiments/one/report", headers=ADMIN)
    assert served.status_code == 409 and served.json() == {"detail": reason}
    # the command line gives the same reason on one line, not the report renderer's internal field
    html = tmp_path / "one.html"
    result = runner.invoke(app, ["analyze", "one", "--db", db_url, "--html", str(html)], prog_name="sendlab")
    assert result.exit_code == 1
    assert result.output.splitlines() == [f"error: {reason}"]
    assert not html.exists()
    table = runner.invoke(app, ["analyze", "one", "--db", db_url])  # without --html: the table and why
    assert table.exit_code == 0
    assert "subject: not analysed, only one variant: nothing to compare" in table.output


# ---------------------------------------------------------------- segments


def _segment_context(rng: np.random.Generator) -> dict[str, Any]:
    context: dict[str, Any] = {"consent": True, "clicks_30d": int(rng.poisson(4))}
    if rng.random() < 0.9:
        context["country"] = str(rng.choice(["CA", "US", "FR"], p=[0.5, 0.3, 0.2]))
    return context


def test_results_by_segment_equal_the_library_on_raw_statistics(make_client, db_url) -> None:
    client = make_client(db_url)
    spec = make_spec(record=["country", "clicks_30d"])
    assert client.post("/v1/experiments", json=spec, headers=ADMIN).status_code == 201
    rng = np.random.default_rng(8)
    contexts = [_segment_context(rng) for _ in range(3000)]
    decisions = _send(client, "hello", contexts)
    rows, events = [], []
    for i, (d, ctx) in enumerate(zip(decisions, contexts, strict=True)):
        variants = {s: v["id"] for s, v in d["variants"].items()}
        lift = 2.0 if variants["subject"] == "urgent" and ctx.get("country") == "CA" else 1.0
        click = bool(rng.random() < 0.06 * lift)
        conversion = bool(click and rng.random() < 0.3)
        unsubscribe = bool(rng.random() < 0.01)
        for name, happened in (("click", click), ("conversion", conversion), ("unsubscribe", unsubscribe)):
            if happened:
                events.append({"event_id": f"{name}-{i}", "decision_id": d["decision_id"], "type": name})
        rows.append({"variants": variants, "country": ctx.get("country"), "click": click,
                     "conversion": conversion, "unsubscribe": unsubscribe,
                     "y": 1.0 * click + 5.0 * conversion})
    _post(client, events)

    response = client.get("/v1/experiments/hello/results?segment=country", headers=ADMIN)
    assert response.status_code == 200, response.text
    seg = response.json()["segments"]
    assert seg["attribute"] == "country"
    assert seg["missing"] == sum(r["country"] is None for r in rows)
    assert seg["values"] == {c: sum(r["country"] == c for r in rows) for c in ("CA", "FR", "US")}
    assert seg["decisions"] == len(rows) and seg["skipped"] == {}
    assert {s["slot"] for s in seg["by_slot"]} == {"subject", "cta"}
    for entry in seg["by_slot"]:
        slot, control = entry["slot"], {"subject": "plain", "cta": "shop"}[entry["slot"]]
        variants = [control, {"subject": "urgent", "cta": "see"}[slot]]
        segment_to_arms = {}
        for country in ("CA", "FR", "US"):
            arms = []
            for v in variants:
                mine = [r for r in rows if r["country"] == country and r["variants"][slot] == v]
                counts = {e: sum(r[e] for r in mine) for e in ("click", "conversion", "unsubscribe")}
                arms.append(ArmData(v, len(mine), counts, SampleStats.from_values([r["y"] for r in mine]),
                                    0.5))
            segment_to_arms[country] = arms
        expected = analyze_segments(slot, "country", segment_to_arms, control,
                                    metrics=["click", "conversion"], guardrails=["unsubscribe"])
        assert entry["warning"] == expected.warning
        assert "segments of 'country'" in entry["warning"] and "holm correction" in entry["warning"]
        got = {(r["segment"], r["variant"], r["metric"]): r for r in entry["rows"]}
        assert len(got) == len(expected.rows) == 3 * 3
        for want in expected.rows:
            row = got[(want.segment, want.variant, want.metric)]
            assert row["p_value"] == pytest.approx(want.p_value, abs=1e-9)
            assert row["p_value_adjusted"] == pytest.approx(want.p_value_adjusted, abs=1e-9)
            assert row["lift"] == pytest.approx(want.lift, abs=1e-9)
            assert row["ci"] == pytest.approx(list(want.ci), abs=1e-9)
            assert row["significant"] == want.significant
        assert set(entry["analyses"]) == {"CA", "FR", "US"}

    result = runner.invoke(app, ["analyze", "hello", "--db", db_url, "--segment", "country"])
    assert result.exit_code == 0, result.output
    assert f"{seg['missing']:,} without 'country'" in result.output
    assert "holm correction across all of them" in result.output
    assert re.search(r"subject\s+CA\s+urgent vs plain\s+click", result.output)

    # the HTML report takes the same option: one row per segment comparison, the adjusted p of the JSON
    page = client.get("/v1/experiments/hello/report?segment=country", headers=ADMIN)
    assert page.status_code == 200, page.text
    assert "<h2>By country</h2>" in page.text
    for entry in seg["by_slot"]:
        table = page.text.split(f"<h3>Slot <code>{entry['slot']}</code> by country</h3>", 1)[1]
        table = table.split("</table>", 1)[0]
        for r in entry["rows"]:
            cells = (f"<tr><td>{r['segment']}</td><td>{r['variant']}</td><td>{r['metric']}</td>"
                     f"<td>{r['lift']:+.2%}</td>")
            assert cells in table and f"<td>{r['p_value_adjusted']:.3g}</td>" in table
    both = client.get("/v1/experiments/hello/report?segment=country&covariate=x", headers=ADMIN)
    assert both.status_code == 422 and both.json()["detail"][0]["loc"] == ["query", "covariate"]


# ---------------------------------------------------------------- CUPED


def _cuped_context(rng: np.random.Generator) -> dict[str, Any]:
    u = rng.random()
    context: dict[str, Any] = {"consent": True}
    if u < 0.85:
        context["clicks_30d"] = int(rng.poisson(4))
    elif u < 0.9:
        context["clicks_30d"] = "n/a"  # not a number: left unadjusted
    return context  # else: missing


def test_cuped_from_the_log_equals_the_library_on_raw_statistics(make_client, db_url) -> None:
    client = make_client(db_url)
    assert client.post("/v1/experiments", json=_revenue_spec("cuped"), headers=ADMIN).status_code == 201
    rng = np.random.default_rng(12)
    contexts = [_cuped_context(rng) for _ in range(2000)]
    decisions = _send(client, "cuped", contexts)
    events, by_variant = [], {"plain": ([], []), "urgent": ([], [])}
    for i, (d, ctx) in enumerate(zip(decisions, contexts, strict=True)):
        variant = d["variants"]["subject"]["id"]
        x = ctx.get("clicks_30d")
        x = float(x) if isinstance(x, int) else None
        base = 4.0 if x is None else x
        y = round(max(0.0, 3.0 * base + rng.normal(0.0, 2.0) + (0.6 if variant == "urgent" else 0.0)), 2)
        if y:
            events.append({"event_id": f"rev-{i}", "decision_id": d["decision_id"], "type": "revenue",
                           "value": y})
        by_variant[variant][0].append(x)
        by_variant[variant][1].append(y)
    _post(client, events)

    response = client.get("/v1/experiments/cuped/results?covariate=clicks_30d", headers=ADMIN)
    assert response.status_code == 200, response.text
    body = response.json()
    cov = body["covariate"]
    missing = {v: sum(x is None for x in xs) for v, (xs, _) in by_variant.items()}
    assert cov["attribute"] == "clicks_30d" and cov["decisions"] == 2000
    assert cov["missing"] == sum(missing.values()) > 0
    assert {a["variant"]: a["missing"] for a in cov["arms"]} == missing
    assert f"{cov['missing']:,} of 2,000 decisions have no number" in cov["note"]
    page = client.get("/v1/experiments/cuped/report?covariate=clicks_30d", headers=ADMIN)
    assert page.status_code == 200 and f"CUPED: {html.escape(cov['note'])}" in page.text

    # the raw rows: decisions without a number get the mean of the others' covariate
    observed = np.array([x for xs, _ in by_variant.values() for x in xs if x is not None])
    fill = observed.mean()
    joint, totals = {}, {}
    for v, (xs, ys) in by_variant.items():
        x = np.array([fill if xi is None else xi for xi in xs])
        joint[v] = RegressionStats.from_values(x, ys)
        totals[v] = SampleStats.from_values(ys)
    seen = [(xi, yi) for xs, ys in by_variant.values()
            for xi, yi in zip(xs, ys, strict=True) if xi is not None]
    sx, sy = np.array(seen).T
    theta = np.cov(sx, sy, ddof=1)[0, 1] / np.var(sx, ddof=1)  # theta of the observed rows alone
    assert cov["theta"]["subject"] == pytest.approx(theta, rel=1e-9)

    (comparison,) = [c for c in body["comparisons"] if c["metric"] == "reward"]
    reference = cuped_compare(joint["plain"], joint["urgent"])
    assert reference.theta == pytest.approx(theta, rel=1e-9)
    assert comparison["p_value"] == pytest.approx(reference.test.p_value, abs=1e-9)
    assert comparison["variance_reduction"] == pytest.approx(reference.variance_reduction, abs=1e-9)
    assert comparison["variance_reduction"] > 0.5  # y is about 3 x: most of its variance is explained
    arms = [ArmData(v, len(by_variant[v][1]), {}, totals[v], 0.5) for v in ("plain", "urgent")]
    expected = analyze_slot("subject", arms, "plain", metrics=[], covariates=joint)
    (want,) = expected.comparisons
    assert comparison["lift"] == pytest.approx(want.lift, abs=1e-9)
    assert comparison["ci"] == pytest.approx(list(want.ci), abs=1e-9)
    detail = body["analyses"][0]["comparisons"][0]
    assert detail["absolute_ci"] == pytest.approx(list(reference.difference.ci), abs=1e-9)

    plain = client.get("/v1/experiments/cuped/results", headers=ADMIN).json()
    (raw,) = [c for c in plain["comparisons"] if c["metric"] == "reward"]
    assert raw["variance_reduction"] is None and plain["covariate"] is None
    unadjusted = plain["analyses"][0]["comparisons"][0]["absolute_ci"]
    assert unadjusted == pytest.approx(list(reference.raw_difference.ci), abs=1e-9)
    width = detail["absolute_ci"][1] - detail["absolute_ci"][0]
    assert width / (unadjusted[1] - unadjusted[0]) < 0.75  # the adjusted interval is much narrower

    result = runner.invoke(app, ["analyze", "cuped", "--db", db_url, "--covariate", "clicks_30d"])
    assert result.exit_code == 0, result.output
    assert "variance reduction" in result.output and f"{reference.variance_reduction:.1%}" in result.output
    assert "left unadjusted" in result.output


@pytest.mark.parametrize(
    ("query", "loc", "needle"),
    [
        ("segment=device", ["query", "segment"], "'device' is not stored with the decisions"),
        ("covariate=clicks", ["query", "covariate"], "'clicks' is not stored with the decisions"),
        ("segment=country&covariate=clicks_30d", ["query", "covariate"], "not both"),
    ],
)
def test_attributes_that_cannot_be_used_are_a_422(client, query, loc, needle) -> None:
    assert client.post("/v1/experiments", json=_revenue_spec("bad"), headers=ADMIN).status_code == 201
    response = client.get(f"/v1/experiments/bad/results?{query}", headers=ADMIN)
    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert problem["loc"] == loc and needle in problem["msg"]


def test_cli_attribute_errors_are_one_line(sqlite_url, client) -> None:
    assert client.post("/v1/experiments", json=_revenue_spec("bad"), headers=ADMIN).status_code == 201
    for args, needle in [(["--segment", "device"], "segment: 'device' is not stored"),
                         (["--segment", "country", "--covariate", "clicks_30d"], "not both")]:
        result = runner.invoke(app, ["analyze", "bad", "--db", sqlite_url, *args], prog_name="sendlab")
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert result.exit_code == 1 and len(lines) == 1, result.output
        assert lines[0].startswith("error: ") and needle in lines[0]
