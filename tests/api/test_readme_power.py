"""The ``sendlab power`` examples of the README print what the README says, and its HTTP answers hold."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from tests.api.conftest import ADMIN

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
CONSOLE = re.findall(r"```console\n(.*?)```", README, re.S)
def _examples() -> list[tuple[str, list[str]]]:
    found = []
    for block in CONSOLE:
        command, lines = None, []
        for line in block.splitlines():
            if line.startswith("$ "):
                if command is not None:
                    found.append((command, lines))
                command, lines = line[2:], []
            else:
                lines.append(line)
        if command is not None:
            found.append((command, lines))
    return [(c, lines) for c, lines in found if c.startswith("sendlab power")]


def test_readme_has_power_examples():
    commands = [c for c, _ in _examples()]
    for sub in ("rate", "mean", "test-then-send", "sequential", "bandit"):
        assert any(c.startswith(f"sendlab power {sub} ") for c in commands), sub


@pytest.mark.parametrize(("command", "expected"), _examples(), ids=[c for c, _ in _examples()])
def test_readme_power_example_prints_what_it_says(command, expected, tmp_path, monkeypatch):
    (tmp_path / "api").symlink_to(ROOT / "api")  # the example file, by its path in the README
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, shlex.split(command)[1:])
    assert result.exit_code == 0, result.output
    printed = result.stdout.splitlines()
    assert len(printed) == len(expected), result.stdout
    for got, want in zip(printed, expected, strict=True):
        if want.endswith("..."):
            assert got.startswith(want[:-3]), (got, want)
        else:
            assert got == want


def test_readme_http_answers(client):
    # the README quotes each figure's leading digits followed by "..."
    def post(path: str, body: dict) -> dict:
        response = client.post(path, json=body, headers=ADMIN)
        assert response.status_code == 200, response.text
        return response.json()

    mde = post("/v1/power/rate/mde", {"baseline": 0.03, "n_per_arm": 20000})
    assert str(mde["mde_relative"]).startswith("0.16543171")
    assert str(mde["mde_absolute"]).startswith("0.00496295")
    assert str(mde["treatment_rate"]).startswith("0.03496295")
    power = post("/v1/power/rate/power",
                 {"baseline": 0.03, "mde": 0.10, "relative": True, "n_per_arm": 20000})
    assert str(power["power"]).startswith("0.40454251")
    curve = post("/v1/power/rate/curve", {"baseline": 0.03, "mde": 0.10, "relative": True,
                                          "x": [10000, 50000, 100000]})
    assert all(str(p["power"]).startswith(v) for p, v in zip(curve["points"],
                                                              ["0.22885", "0.77533", "0.97006"], strict=True))
    assert str(curve["x_at_target"]).startswith("53181.78")
    mean = post("/v1/power/mean", {"summary": {"n": 1000, "sum": 5033.78, "sum_squares": 519693.9074},
                                   "mde": 0.10, "relative": True})
    assert (mean["per_arm"], mean["total"]) == (30658, 61316)
    assert str(mean["details"]["sd"]).startswith("22.2452")
    mean_mde = post("/v1/power/mean/mde", {"sd": 22.25, "n_per_arm": 50000})
    assert str(mean_mde["mde_absolute"]).startswith("0.39424617")
    assert str(mean_mde["effect_size"]).startswith("0.01771892")
    mean_power = post("/v1/power/mean/power", {"sd": 22.25, "mde": 0.5, "n_per_arm": 50000})
    assert str(mean_power["power"]).startswith("0.94443370")
    mean_curve = post("/v1/power/mean/curve", {"sd": 22.25, "n_per_arm": 50000, "x": [0.2, 0.4, 0.6]})
    assert all(str(p["power"]).startswith(v) for p, v in zip(mean_curve["points"],
                                                              ["0.29539", "0.81124", "0.98938"], strict=True))
    send = post("/v1/power/test-then-send", {"list_size": 200000, "rates": [0.03, 0.033, 0.036]})
    assert (send["per_arm"], send["test_share"]) == (9657, 0.144855)
    assert str(send["power"]).startswith("0.53780") and str(send["prob_correct_winner"]).startswith("0.86966")
    seq = post("/v1/power/sequential", {"design": "msprt", "fixed_n": 53182, "seed": 7})
    assert (round(seq["inflation"], 2), seq["sequential_n"]) == (1.65, 87751)
    bandit = post("/v1/power/bandit", {"rates": [0.03, 0.036], "horizon": 100000, "replications": 50,
                                       "seed": 7})
    assert str(bandit["losing_share_bandit"]).startswith("0.065594")
    assert (bandit["losing_share_fixed"], bandit["seed"]) == (0.5, 7)
