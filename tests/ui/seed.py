"""A service seeded like ``sendlab demo``: simulated sends, their outcomes, learning between sends.

Three experiments: the example contextual bandit (``spring-sale``), a fixed A/B test of the subject
(``subject-ab``, storing each recipient's device and recency for segments and CUPED) and a
Thompson-sampling bandit (``subject-bandit``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from api.demo_world import draw_contexts, simulate_outcomes
from experiments.models import Decision, OutcomeEvent
from experiments.service import ExperimentService
from experiments.spec import parse_spec
from experiments.store import create_tables, make_engine

EXAMPLE_SPEC = Path(__file__).resolve().parents[2] / "api" / "examples" / "spring-sale.yaml"
ROUND_GAP = timedelta(days=4)


@dataclass
class ManualClock:
    """A clock moved by hand."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now


def _spec(key: str, name: str, design: dict[str, Any], events: dict[str, float]) -> dict[str, Any]:
    spec = copy.deepcopy(yaml.safe_load(EXAMPLE_SPEC.read_text()))
    spec.update(key=key, name=name, design=design, holdout=0.0, rules=[])
    spec["reward"] = {"events": events, "window_hours": 72, "guardrails": ["unsubscribe"]}
    return spec


def _events(decisions: list[Decision], contexts: list[dict[str, Any]], rng: np.random.Generator,
            sent_at: datetime) -> list[OutcomeEvent]:
    chosen = [{slot: v.id for slot, v in d.variants.items()} for d in decisions]
    events = []
    for d, o in zip(decisions, simulate_outcomes(rng, contexts, chosen), strict=True):
        if o.clicked:
            events.append(OutcomeEvent(f"{d.decision_id}:c", d.decision_id, "click", None,
                                       sent_at + timedelta(hours=2)))
        if o.converted:
            events.append(OutcomeEvent(f"{d.decision_id}:v", d.decision_id, "conversion", o.revenue,
                                       sent_at + timedelta(hours=3)))
        if o.unsubscribed:
            events.append(OutcomeEvent(f"{d.decision_id}:u", d.decision_id, "unsubscribe", None,
                                       sent_at + timedelta(hours=5)))
    return events


def seeded_service(
    db_url: str, *, rounds: int = 3, recipients: int = 1500, seed: int = 7
) -> ExperimentService:
    """A service on ``db_url`` holding the three experiments after ``rounds`` simulated sends each."""
    rng = np.random.default_rng(seed)
    clock = ManualClock(datetime.now(UTC) - rounds * ROUND_GAP)
    engine = make_engine(db_url)
    create_tables(engine)
    service = ExperimentService(engine, clock=clock, seed=seed)
    specs = [
        parse_spec(EXAMPLE_SPEC.read_bytes(), content_type="application/yaml"),
        parse_spec({**_spec("subject-ab", "Subject line A/B test", {"type": "ab"},
                            {"click": 1.0, "conversion": 5.0}), "record": ["device", "recency_days"]}),
        parse_spec(_spec("subject-bandit", "Subject line bandit", {"type": "bandit", "policy": "thompson"},
                         {"click": 1.0})),
    ]
    for spec in specs:
        service.create(spec)
    for r in range(rounds):
        sent_at = clock.now
        for spec in specs:
            n = recipients // 3 if spec.design.type == "contextual" else recipients  # linear TS is slow
            contexts = draw_contexts(rng, n)
            ids = [f"{spec.key}-{r}-{i}" for i in range(n)]
            decisions = service.assign_batch(spec.key, list(zip(ids, contexts, strict=True)))
            clock.now = sent_at + timedelta(hours=6)
            service.record_outcomes(_events(decisions, contexts, rng, sent_at))
            clock.now = sent_at
        clock.now = sent_at + ROUND_GAP
        for spec in specs:
            if spec.design.type in ("bandit", "contextual"):
                service.learn(spec.key)
    return service
