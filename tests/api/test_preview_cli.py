"""``sendlab preview SPEC --recipients FILE`` (the command is registered by the lead; here it is mounted
on a Typer app with SendLab's error handling, as ``api.cli.app`` mounts its commands)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from api.cli.group import SendlabGroup
from api.cli.preview import preview
from experiments.service import ExperimentService
from experiments.spec import parse_spec
from experiments.store import create_tables, make_engine

EXAMPLES = Path(__file__).resolve().parents[2] / "api" / "examples"
PERSONAL = EXAMPLES / "spring-sale-personal.yaml"
SAMPLE = EXAMPLES / "spring-sale-sample.csv"

app = typer.Typer(cls=SendlabGroup, add_completion=False, pretty_exceptions_enable=False)
app.command("preview")(preview)
app.command("noop")(lambda: None)  # a second command keeps "preview" a subcommand, as in sendlab
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, ["preview", *args])


def test_the_example_previews_in_memory_as_json() -> None:
    result = invoke(str(PERSONAL), "--recipients", str(SAMPLE), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["source"].startswith("spring-sale-personal: the spec in memory")
    by_id = {p["decision"]["recipient_id"]: p for p in data["previews"]}
    ada, bo, dee = by_id["ada"], by_id["bo"], by_id["dee"]
    # ada is a vip in California: both rules fire; the vip subject renders her name in its if-block
    assert ada["rules_fired"] == ["outdoor buyers in California see the shop button",
                                  "vips get the vip subject line"]
    assert ada["slots"]["subject"]["offered"] == [
        {"id": "vip", "content": "Early access for you, Ada", "probability": 1.0}
    ]
    # bo has no first name: the personal subject is not offered, the default greets a friend
    assert bo["slots"]["subject"]["not_offered"] == {"personal": "content: 'first_name' is undefined"}
    plain = next(o for o in bo["slots"]["subject"]["offered"] if o["id"] == "plain")
    assert plain["content"] == "Spring sale: 20% off, friend"
    see = next(o for o in bo["slots"]["cta"]["offered"] if o["id"] == "see")
    assert see["content"] == "See the shoes collection"
    assert sum(c["probability"] for c in bo["combinations"]) == pytest.approx(1.0)
    assert dee["screening"] == "no_consent" and dee["fallback_only"]
    coverage = data["coverage"]
    assert coverage["fallback_only"] == [{"recipient_id": "dee", "why": "no_consent"}]
    assert {tuple(u["rules"]) for u in coverage["unreached_rule_combinations"]} == {
        ("outdoor buyers in California see the shop button",), ("vips get the vip subject line",)
    }


def test_text_output_names_rules_offers_and_coverage() -> None:
    result = invoke(str(PERSONAL), "--recipients", str(SAMPLE))
    assert result.exit_code == 0, result.output
    assert "ada: policy; rules fired: outdoor buyers in California see the shop button" in result.output
    assert "personal: not offered (content: 'first_name' is undefined)" in result.output
    assert "recipients who only ever get the fallback: 1" in result.output
    assert "{{" not in result.output.replace("e.g. {", "")


def test_preview_against_a_stored_experiment_logs_nothing(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'store.db'}"
    engine = make_engine(db)
    create_tables(engine)
    service = ExperimentService(engine, seed=1)
    service.create(parse_spec(PERSONAL.read_bytes(), content_type="application/yaml"))
    result = invoke(str(PERSONAL), "--recipients", str(SAMPLE), "--db", db, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["source"] == "spring-sale-personal: stored version 1 (running)"
    assert service.summarize("spring-sale-personal").arms[0].decisions == 0
    assert sum(a.decisions for a in service.summarize("spring-sale-personal").arms) == 0
    engine.dispose()


@pytest.mark.parametrize(
    ("sample", "message"),
    [
        ("recipient_id,segment\n", "--recipients: "),
        ("name,segment\nada,vip\n", "--recipients: row 1 has no 'recipient_id'"),
    ],
)
def test_bad_samples_fail_on_one_line(tmp_path: Path, sample: str, message: str) -> None:
    path = tmp_path / "sample.csv"
    path.write_text(sample)
    result = invoke(str(PERSONAL), "--recipients", str(path))
    assert result.exit_code == 1
    assert message in result.output and len(result.output.strip().splitlines()) == 1


def test_a_broken_template_is_reported_with_its_path(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    text = PERSONAL.read_text().replace("{{ first_name }}, we picked", "{{ first_name | shout }}, we")
    spec.write_text(text)
    result = invoke(str(spec), "--recipients", str(SAMPLE))
    assert result.exit_code == 1
    # the command line prints the path as api.errors formats locations (variants.2 for variants[2])
    assert "slots.subject.variants.2.content: unknown filter 'shout'" in result.output


def _readme_preview_block() -> list[str]:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    start = readme.index("$ sendlab preview api/examples/spring-sale-personal.yaml")
    block = readme[start:readme.index("```", start)]
    return block.splitlines()[1:]  # the output, after the command line


def test_the_command_prints_what_the_readme_shows() -> None:
    """Every line of the README's preview block (``...`` marks left-out lines) is printed, in order."""
    expected = [line.rstrip() for line in _readme_preview_block() if line.strip() and line.strip() != "..."]
    assert len(expected) > 20
    result = invoke(str(PERSONAL), "--recipients", str(SAMPLE))
    assert result.exit_code == 0, result.output
    printed = [line.rstrip() for line in result.output.splitlines()]
    position = 0
    for line in expected:
        assert line in printed[position:], f"README line not printed (in order): {line!r}"
        position = printed.index(line, position) + 1
