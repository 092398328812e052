"""Text of the data (a variant id ``<!--<script>``) cannot break the experiment page's charts."""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from api.ui.charts import figure_json

HOSTILE = "<!--<script>"


def test_figure_json_escapes_every_angle_bracket_and_reads_the_same() -> None:
    figure = {"data": [{"name": HOSTILE, "x": ["</script><b>&amp;"]}]}
    text = figure_json(figure)
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == figure


def test_a_hostile_variant_id_leaves_every_chart_of_the_page_whole(tmp_path) -> None:
    settings = Settings(db=f"sqlite:///{tmp_path / 'ui.db'}", ui_refresh_seconds=0)
    with TestClient(create_app(settings)) as client:
        spec = {"key": "xss", "slots": {"subject": {"variants": [{"id": "plain"}, {"id": HOSTILE}]}},
                "design": {"type": "ab"}}
        assert client.post("/v1/experiments", json=spec).status_code == 201
        for i in range(40):
            response = client.post("/v1/experiments/xss/assign", json={"recipient_id": f"r{i}"})
            assert response.status_code == 200
        page = client.get("/ui/experiments/xss").text
    assert HOSTILE not in page.replace("&lt;!--&lt;script&gt;", "")  # only HTML-escaped as text
    scripts = re.findall(r'<script type="application/json" class="figure">(.*?)</script>', page, re.S)
    assert scripts
    for script in scripts:
        assert "<" not in script
        json.loads(script)
    assert any(HOSTILE in json.dumps(json.loads(s), ensure_ascii=False) for s in scripts)
