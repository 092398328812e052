"""``design.update.delays: model``: decisions are learned before their window closes, as part of a trial,
and once every outcome is in (every window closed) the policy is the one that waited."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from scipy import optimize, special, stats
from sqlalchemy import inspect, text
from statsmodels.duration.survfunc import SurvfuncRight

from analysis.delays import fit_exponential_delay
from bandit import load_policy
from experiments.errors import SpecError
from experiments.learning import TIME_ORIGIN
from experiments.models import OutcomeEvent
from experiments.spec import parse_spec
from experiments.store import create_tables, make_engine
from tests.experiments.conftest import make_spec
from tests.experiments.legacy_store import as_made_before_migrations

RATES = {"plain": 0.15, "urgent": 0.35}
WINDOW = 24.0


def bandit_spec(delays: str) -> object:
    return make_spec(
        key=f"late-{delays}",
        slots={"subject": {"variants": [{"id": v, "content": v} for v in RATES]}},
        design={"type": "bandit", "policy": "thompson", "update": {"delays": delays}},
        reward={"events": {"click": 1.0}, "window_hours": WINDOW},
    )


def send(service, key: str, tag: str, n: int, rng: np.random.Generator) -> list[tuple[str, float | None]]:
    """``n`` decisions; each clicks with its variant's rate after an exponential delay of mean 6 hours
    (cut at the window): ``(decision id, hours to its click or None)``."""
    decisions = service.assign_batch(key, [(f"{tag}-{i}", {}) for i in range(n)])
    out = []
    for d in decisions:
        clicks = rng.random() < RATES[d.variants["subject"].id]
        delay = rng.exponential(6.0)
        out.append((d.decision_id, delay if clicks and delay < WINDOW else None))
    return out


def post_due(service, clock, sends, sent_at, posted: set[str]) -> None:
    """Post every click whose time has come (stamped with its own time)."""
    events = []
    for (decision_id, delay), at in zip(sends, sent_at, strict=True):
        if delay is not None and decision_id not in posted and at + timedelta(hours=delay) <= clock.now:
            posted.add(decision_id)
            events.append(OutcomeEvent(f"c-{decision_id}", decision_id, "click", None,
                                       at + timedelta(hours=delay)))
    if events:
        service.record_outcomes(events)


def posterior(service, key: str) -> tuple[np.ndarray, np.ndarray]:
    return load_policy(service.policy_state(key)[1]).posterior()


def test_delays_model_learns_early_and_ends_where_waiting_ends(service, clock) -> None:
    spec = bandit_spec("model")
    service.create(spec)
    key = spec.key
    _, first_state = service.policy_state(key)
    rng = np.random.default_rng(4)
    sends, sent_at, posted = [], [], set()
    for batch in range(3):  # a send every 8 hours, learning every 2 hours
        at = clock.now
        new = send(service, key, f"b{batch}", 300, rng)
        sends += new
        sent_at += [at] * len(new)
        for _ in range(4):
            clock.advance(hours=2)
            post_due(service, clock, sends, sent_at, posted)
            service.learn(key)
    # 8 hours after the last send, well inside its 24-hour window: that send is learned, in part
    alpha, beta = posterior(service, key)
    learned_trials = float((alpha + beta).sum() - 2 * len(RATES))
    assert 600 < learned_trials < 900  # the first two sends fully-ish, the third in part, none waited
    # every click so far counts whole; the decisions still without one count as part of a trial
    whole = posterior_after_waiting(service, clock, first_state)
    np.testing.assert_allclose(alpha, whole[0], rtol=1e-12)
    assert np.all(beta < whole[1]) and float((whole[1] - beta).sum()) > 20
    # the windows close: every decision ends as a whole trial with its reward
    clock.advance(hours=WINDOW + 1)
    post_due(service, clock, sends, sent_at, posted)
    service.learn(key)
    alpha, beta = posterior(service, key)
    expected = posterior_after_waiting(service, clock, first_state)
    np.testing.assert_allclose(alpha, expected[0], rtol=1e-12)
    np.testing.assert_allclose(beta, expected[1], rtol=1e-12)
    assert float((alpha + beta).sum()) == pytest.approx(900 + 2 * len(RATES))


def posterior_after_waiting(service, clock, first_state: bytes) -> tuple[np.ndarray, np.ndarray]:
    """The first snapshot updated once with every decision's reward so far: what waiting learns."""
    log = service.export_log("late-model")
    policy = load_policy(first_state)
    policy.update(
        len(log), np.array([r.arm for r in log], dtype=np.int64),
        np.array([r.reward for r in log], dtype=np.float64), np.array([r.propensity for r in log]),
        times=np.array([(r.created_at.replace(tzinfo=None) - TIME_ORIGIN) / timedelta(days=1) for r in log]),
    )
    return policy.posterior()


def test_waiting_learns_nothing_inside_the_window(service, clock) -> None:
    spec = bandit_spec("wait")
    service.create(spec)
    rng = np.random.default_rng(4)
    sends = send(service, spec.key, "w", 300, rng)
    clock.advance(hours=8)
    post_due(service, clock, sends, [clock.now - timedelta(hours=8)] * len(sends), set())
    service.learn(spec.key)
    alpha, beta = posterior(service, spec.key)
    assert float((alpha + beta).sum()) == 2 * len(RATES)


@pytest.mark.parametrize("design", [
    {"type": "ab", "update": {"delays": "model"}},
    {"type": "contextual", "policy": "vw", "context": ["country"], "update": {"delays": "model"}},
])
def test_delays_model_needs_a_policy_that_revises(design) -> None:
    variants = [{"id": v, "content": v} for v in ("a", "b")]
    data = {"key": "x", "slots": {"subject": {"variants": variants}}, "design": design,
            "reward": {"events": {"click": 1.0}}}
    with pytest.raises(SpecError) as caught:
        parse_spec(data)
    assert "design.update.delays" in str(caught.value)


@pytest.mark.parametrize(("update", "message"), [
    ({"delay_model": "lognormal"}, "design.update.delay_model: applies only with delays: model"),
    ({"delays": "model", "delay_model": "weibull"}, "design.update.delay_model"),
])
def test_delay_model_is_checked(update, message) -> None:
    variants = [{"id": v, "content": v} for v in ("a", "b")]
    data = {"key": "x", "slots": {"subject": {"variants": variants}}, "reward": {"events": {"click": 1.0}},
            "design": {"type": "bandit", "policy": "thompson", "update": update}}
    with pytest.raises(SpecError) as caught:
        parse_spec(data)
    assert message in str(caught.value)


def test_create_tables_adds_the_weight_column_to_an_older_store(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    create_tables(engine)
    as_made_before_migrations(engine)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE decisions DROP COLUMN learned_weight"))
    create_tables(engine)
    assert "learned_weight" in {c["name"] for c in inspect(engine).get_columns("decisions")}
    engine.dispose()


def _exponential_cdf(elapsed, seen, window):
    return fit_exponential_delay(elapsed, seen, window).cdf


def _reference_posterior(sends, sent_at, arms, now, fit=_exponential_cdf) -> tuple[np.ndarray, np.ndarray]:
    """Beta(1, 1) updated with every decision sent by ``now``: a click counts whole, a decision without
    one counts as F(hours since its send) of a failure (a whole one once its window closed), F = ``fit``
    of the hours since each send (to its click, or followed so far), written out here."""
    age = np.array([(now - at) / timedelta(hours=1) for at in sent_at])
    delay = np.array([np.inf if d is None else d for _, d in sends])
    sent = age >= 0
    clicked = delay <= age
    elapsed = np.where(clicked, delay, np.minimum(age, WINDOW))[sent]
    cdf = fit(elapsed, clicked[sent], WINDOW)
    weight = np.where(clicked | (age >= WINDOW), 1.0, cdf(np.clip(age, 0.0, WINDOW)))
    alpha, beta = np.ones(len(RATES)), np.ones(len(RATES))
    np.add.at(alpha, arms[sent & clicked], 1.0)
    np.add.at(beta, arms[sent & ~clicked], weight[sent & ~clicked])
    return alpha, beta


def test_delays_are_counted_from_the_send_not_the_decision(service, clock) -> None:
    # a first send followed for a whole window (it pins the delay distribution down); then a send
    # decided a day ahead (send_at) and one decided as it goes out, at the same time: both learn as
    # sends of the same age, and nothing of the first is learned before its email goes out
    spec = bandit_spec("model")
    service.create(spec)
    key = spec.key
    rng = np.random.default_rng(11)
    start = clock.now
    first = service.assign_batch(key, [(f"f-{i}", {}) for i in range(300)])
    clock.advance(hours=4)
    send_time = start + timedelta(hours=24)
    ahead = service.assign_batch(key, [(f"a-{i}", {}) for i in range(300)], send_at=send_time)
    decisions, sent_at, sends, posted = first + ahead, [start] * 300 + [send_time] * 300, [], set()

    def clicks_of(new):
        for d in new:
            delay = rng.exponential(6.0)
            clicks = rng.random() < RATES[d.variants["subject"].id]
            sends.append((d.decision_id, delay if clicks and delay < WINDOW else None))

    clicks_of(decisions)
    for _ in range(10):  # every 2 hours until the second send goes out
        clock.advance(hours=2)
        post_due(service, clock, sends, sent_at, posted)
        service.learn(key)
    arms = np.array([list(RATES).index(d.variants["subject"].id) for d in decisions])
    np.testing.assert_allclose(posterior(service, key),
                               _reference_posterior(sends, sent_at, arms, clock.now), rtol=1e-6)
    assert np.sum(posterior(service, key)) == pytest.approx(300 + 2 * len(RATES), abs=1.0)
    now_sent = service.assign_batch(key, [(f"n-{i}", {}) for i in range(300)])
    clicks_of(now_sent)
    decisions, sent_at = decisions + now_sent, sent_at + [send_time] * 300
    arms = np.array([list(RATES).index(d.variants["subject"].id) for d in decisions])
    for _ in range(2):  # every 2 hours over the first 4 hours after the send
        clock.advance(hours=2)
        post_due(service, clock, sends, sent_at, posted)
        service.learn(key)
    alpha, beta = posterior(service, key)
    expected = _reference_posterior(sends, sent_at, arms, clock.now)
    np.testing.assert_allclose(alpha, expected[0], rtol=1e-12)
    np.testing.assert_allclose(beta, expected[1], rtol=1e-6)
    # the estimate of each rate within the window is the truth's, within its 99% interval
    in_window = np.array(list(RATES.values())) * -np.expm1(-WINDOW / 6.0)
    low, high = stats.beta.ppf([[0.005], [0.995]], alpha, beta)
    assert np.all((low <= in_window) & (in_window <= high)), (low, high)
    # the windows close: every decision is learned whole, as waiting would
    clock.advance(hours=WINDOW)
    post_due(service, clock, sends, sent_at, posted)
    service.learn(key)
    alpha, beta = posterior(service, key)
    clicks = np.bincount(arms[[d is not None for _, d in sends]], minlength=len(RATES))
    np.testing.assert_allclose(alpha, 1 + clicks)
    np.testing.assert_allclose(beta, 1 + np.bincount(arms, minlength=len(RATES)) - clicks)


def _parametric_cdf(distribution):
    """F of Chapelle's model with a delay of the scipy ``distribution(a, b)`` (a, b unconstrained),
    fitted by maximising the censored likelihood with Nelder-Mead (independent of analysis.delays)."""
    def fit(elapsed, seen, window):
        def negative(theta):
            delay, p = distribution(*theta[:2]), special.expit(theta[2])
            return -(np.sum(np.log(p) + delay.logpdf(elapsed[seen]))
                     + np.sum(np.log1p(-p * delay.cdf(elapsed[~seen]))))
        start = np.array([np.log(np.mean(elapsed[seen])), 0.0, 0.0])
        best = optimize.minimize(negative, start, method="Nelder-Mead",
                                 options={"xatol": 1e-9, "fatol": 1e-10, "maxiter": 20_000})
        delay = distribution(*best.x[:2])
        return lambda t: delay.cdf(t) / delay.cdf(window)
    return fit


def _kaplan_meier_cdf(elapsed, seen, window):
    """F from statsmodels' Kaplan-Meier survival, normalised at the end of follow-up."""
    survival = SurvfuncRight(elapsed, seen.astype(int))
    followed = min(float(elapsed.max()), window)

    def at(t):
        index = np.searchsorted(survival.surv_times, t, side="right")
        return np.where(index > 0, np.concatenate([[1.0], survival.surv_prob])[index], 1.0)
    return lambda t: (1 - at(np.minimum(t, followed))) / (1 - at(followed))


KIND_TO_REFERENCE = {
    "exponential": _parametric_cdf(lambda log_mean, _: stats.expon(scale=np.exp(log_mean))),
    "lognormal": _parametric_cdf(lambda mu, log_s: stats.lognorm(s=np.exp(log_s), scale=np.exp(mu))),
    "kaplan_meier": _kaplan_meier_cdf,
}


@pytest.mark.parametrize("delay_model", list(KIND_TO_REFERENCE))
def test_the_spec_chooses_the_delay_model(service, clock, delay_model) -> None:
    # a send followed for longer than its window, then one 4 hours old: the young decisions without a
    # click weigh F(4 h) of a failure by the spec's delay model, each fitted here by an independent route
    spec = make_spec(
        key=f"model-{delay_model}".replace("_", "-"),
        slots={"subject": {"variants": [{"id": v, "content": v} for v in RATES]}},
        design={"type": "bandit", "policy": "thompson",
                "update": {"delays": "model", "delay_model": delay_model}},
        reward={"events": {"click": 1.0}, "window_hours": WINDOW},
    )
    assert spec.design.update.delay_model == delay_model
    service.create(spec)
    rng = np.random.default_rng(5)
    start = clock.now
    sends = send(service, spec.key, "s1", 400, rng)
    clock.advance(hours=26)
    sends += send(service, spec.key, "s2", 400, rng)
    sent_at = [start] * 400 + [clock.now] * 400
    clock.advance(hours=4)
    post_due(service, clock, sends, sent_at, set())
    service.learn(spec.key)
    decision_to_arm = {r.decision_id: r.arm for r in service.export_log(spec.key)}
    arms = np.array([decision_to_arm[decision_id] for decision_id, _ in sends])
    alpha, beta = posterior(service, spec.key)
    expected = _reference_posterior(sends, sent_at, arms, clock.now, KIND_TO_REFERENCE[delay_model])
    np.testing.assert_allclose(alpha, expected[0], rtol=1e-12)
    np.testing.assert_allclose(beta, expected[1], rtol=1e-4)
    # the three models weigh the young decisions differently, so the test tells them apart
    others = [_reference_posterior(sends, sent_at, arms, clock.now, fit)[1]
              for kind, fit in KIND_TO_REFERENCE.items() if kind != delay_model]
    assert all(np.abs(other - beta).sum() > 1.0 for other in others)
