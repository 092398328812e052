"""``sendlab power``: the inverse questions, past values, curves and campaign plans, through Typer's
runner. Every figure is the analysis function's and, where cheap, an independent reference's."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import proportion_effectsize
from typer.testing import CliRunner

from analysis.power import (
    plan_bandit,
    plan_test_then_send,
    power_curve,
    sequential_inflation,
    solve_mean,
    solve_rate,
)
from api.cli import app
from api.cli.progress import progress_after
from tests.api.conftest import answer_without

runner = CliRunner()
PAST = [0.0, 0.0, 12.5, 0.0, 40.0, 3.0, 0.0, 0.0, 7.25, 0.0, 19.9, 0.0]


def run(*args: str) -> dict:
    result = runner.invoke(app, ["power", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def text(*args: str) -> dict[str, str]:
    """The ``name  value`` lines of a text answer (up to the first blank line)."""
    result = runner.invoke(app, ["power", *args])
    assert result.exit_code == 0, result.output
    head = result.stdout.split("\n\n", 1)[0]  # a progress bar goes to stderr
    return dict(line.split("  ", 1) for line in head.splitlines())


def test_rate_with_n_answers_the_minimum_detectable_effect():
    data = run("rate", "--baseline", "0.03", "--n", "20000")
    assert data == answer_without(solve_rate(0.03, n_per_arm=20_000))
    # Reference: statsmodels solves Cohen's h for n = 20,000 per arm (its solver stops at a loose
    # tolerance, hence rel 1e-4); the rate is sin^2(asin(sqrt(0.03)) + h / 2).
    h = NormalIndPower().solve_power(effect_size=None, nobs1=20_000, alpha=0.05, power=0.8)
    assert data["effect_size"] == pytest.approx(h, rel=1e-4)
    assert data["treatment_rate"] == pytest.approx(math.sin(math.asin(math.sqrt(0.03)) + h / 2) ** 2,
                                                   rel=1e-5)
    lines = {k.strip(): v.strip() for k, v in text("rate", "--baseline", "0.03", "--n", "20000").items()}
    assert lines["n per arm"] == "20,000"
    assert lines["mde"] == f"{data['mde_absolute']:+.6g} ({data['mde_relative']:+.2%} of 0.03)"


def test_rate_decrease_and_unpooled_mde():
    data = run("rate", "--baseline", "0.1", "--n", "5000", "--direction", "decrease", "--method", "unpooled")
    # closed form of the unpooled formula at the answer: (z_a/2 + z_b)^2 (p0 q0 + p1 q1) / (p1 - p0)^2 = n
    p1 = data["treatment_rate"]
    z = stats.norm.isf(0.025) + stats.norm.ppf(0.8)
    assert p1 < 0.1
    assert z**2 * (0.1 * 0.9 + p1 * (1 - p1)) / (p1 - 0.1) ** 2 == pytest.approx(5000, rel=1e-9)


def test_rate_with_n_and_mde_answers_the_power():
    data = run("rate", "--baseline", "0.03", "--mde", "0.10", "--relative", "--n", "20000", "--arms", "3")
    assert data == answer_without(solve_rate(0.03, mde=0.10, n_per_arm=20_000, power=None, relative=True,
            arms=3))
    # Reference: NormalIndPower on Cohen's h of 0.033 vs 0.03 at Bonferroni alpha 0.05 / 2.
    h = proportion_effectsize(0.033, 0.03)
    assert data["power"] == pytest.approx(NormalIndPower().power(h, nobs1=20_000, alpha=0.025), rel=1e-12)


def test_mean_with_n_answers_mde_and_power():
    mde = run("mean", "--sd", "12", "--n", "20000")
    assert mde == answer_without(solve_mean(12.0, n_per_arm=20_000), "sd_source")
    d = TTestIndPower().solve_power(effect_size=None, nobs1=20_000, alpha=0.05, power=0.8)  # loose solver
    assert mde["mde_absolute"] == pytest.approx(12 * d, rel=1e-4)
    power = run("mean", "--sd", "12", "--n", "20000", "--mde", "0.5")
    assert power == answer_without(solve_mean(12.0, mde=0.5, n_per_arm=20_000, power=None))
    reference = TTestIndPower().power(0.5 / 12, nobs1=20_000, alpha=0.05)
    assert power["power"] == pytest.approx(reference, rel=1e-12)


@pytest.mark.parametrize(
    ("content", "column"),
    [("revenue\n" + "\n".join(map(str, PAST)) + "\n", None),      # one number per line, a header
     ("\n".join(map(str, PAST)) + "\n", None),                    # no header
     ("id,revenue\n" + "".join(f"r{i},{v}\n" for i, v in enumerate(PAST)), "revenue")],  # a CSV column
)
def test_mean_from_a_file_of_past_values(tmp_path: Path, content: str, column: str | None):
    path = tmp_path / "past.csv"
    path.write_text(content)
    extra = ["--column", column] if column else []
    data = run("mean", "--values", str(path), *extra, "--mde", "0.10", "--relative")
    plan = solve_mean(None, mde=0.10, sample=PAST, relative=True)
    assert data["per_arm"] == plan.n_per_arm and data["details"]["sd"] == plan.sd
    # Reference: numpy's sample sd (ddof=1) and mean; statsmodels TTestIndPower on d = 0.1 mean / sd.
    sd, mean = np.std(PAST, ddof=1), np.mean(PAST)
    assert data["details"]["sd"] == pytest.approx(sd, rel=1e-12)
    assert data["details"]["sd_source"] == "sample"
    n = TTestIndPower().solve_power(effect_size=0.1 * mean / sd, alpha=0.05, power=0.8)
    assert data["per_arm"] == math.ceil(n)
    lines = {k.strip(): v.strip() for k, v in text("mean", "--values", str(path), *extra, "--mde", "0.10",
                                                   "--relative").items()}
    assert lines["sd"] == f"{sd:.6g} (from 12 values in {path})"


@pytest.mark.parametrize("content", ["1\n2\n4\n", "1\n2\n4", "1\n2\n4\n\n\n", "\n1\n2\n4\n",
                                     "revenue\n1\n2\n4\n"])
def test_blank_lines_around_the_values_are_not_recipients(tmp_path: Path, content: str):
    path = tmp_path / "past.txt"
    path.write_text(content)
    data = run("mean", "--values", str(path), "--mde", "0.10")
    # Reference: numpy's sample sd (ddof=1) of the three values
    assert data["details"]["sd"] == pytest.approx(np.std([1, 2, 4], ddof=1), rel=1e-12)


def test_curve_table_json_and_offline_html(tmp_path: Path):
    html = tmp_path / "curve.html"
    data = run("rate", "--baseline", "0.03", "--mde", "0.1", "--relative", "--points", "5",
               "--html", str(html))
    curve = power_curve("rate", baseline=0.03, mde=0.1, relative=True, points=5)
    assert data["curve"]["x"] == list(curve.x) and data["curve"]["power"] == list(curve.power)
    assert data["curve"]["points"] == curve.rows()
    assert data["per_arm"] == 53_182  # the sample-size answer is unchanged by the curve
    page = html.read_text()
    assert "plotly" in page and '<script src="http' not in page  # plotly.js inlined: works offline
    result = runner.invoke(app, ["power", "mean", "--sd", "12", "--n", "20000", "--curve", "--points", "3"])
    assert result.exit_code == 0, result.output
    table = result.output.split("power curve (20,000 per arm fixed)\n", 1)[1].splitlines()
    assert table[0].split() == ["effect", "power"]
    mean_curve = power_curve("mean", over="effect", sd=12.0, n_per_arm=20_000, points=3)
    assert [row.split()[1] for row in table[2:]] == [f"{p:.3f}" for p in mean_curve.power]


def test_test_then_send_known_list():
    data = run("test-then-send", "--list-size", "200000", "--baseline", "0.03", "--lift", "0.15")
    plan = plan_test_then_send(200_000, 0.03, lift=0.15)
    assert data == json.loads(json.dumps(plan.to_dict()))
    # Closed forms at the chosen size: two arms, the winner is right with Phi(diff / sd of the difference);
    # the power is NormalIndPower on Cohen's h.
    n, p0, p1 = data["per_arm"], 0.03, 0.0345
    assert data["prob_correct_winner"] == pytest.approx(
        stats.norm.cdf((p1 - p0) / math.sqrt((p0 * (1 - p0) + p1 * (1 - p1)) / n)), rel=1e-9)
    assert data["power"] == pytest.approx(NormalIndPower().power(proportion_effectsize(p1, p0), nobs1=n,
                                                                 alpha=0.05), rel=1e-9)
    assert data["test_size"] + data["send_size"] == 200_000
    absolute = run("test-then-send", "--list-size", "200000", "--baseline", "0.03", "--lift", "0.0045",
                   "--absolute")
    assert absolute["per_arm"] == data["per_arm"]
    several = run("test-then-send", "--list-size", "200000", "--rates", "0.03,0.033,0.036")
    expected = plan_test_then_send(200_000, rates=[0.03, 0.033, 0.036])
    assert several == json.loads(json.dumps(expected.to_dict()))


def test_sequential_pocock_matches_jennison_turnbull():
    data = run("sequential", "--design", "pocock", "--looks", "5", "--fixed-n", "1000", "--seed", "3")
    expected = sequential_inflation("pocock", looks=5, fixed_n=1000, rng=np.random.default_rng(3))
    assert data == {**expected.to_dict(), "seed": 3}
    # Jennison & Turnbull (2000), tables 2.1 and 2.3: Pocock, K = 5, alpha 0.05 two-sided, power 0.8:
    # C_P = 2.413, R_P = 1.228.
    assert data["critical_value"] == pytest.approx(2.413, abs=1e-3)
    assert data["inflation"] == pytest.approx(1.228, abs=1e-3)
    assert data["sequential_n"] == math.ceil(1000 * data["inflation"])


def test_bandit_plan_is_the_seeded_simulation():
    args = ("bandit", "--rates", "0.04,0.05", "--horizon", "4000", "--batches", "5", "--replications", "6",
            "--seed", "11")
    data = run(*args)
    plan = plan_bandit([0.04, 0.05], 4000, rng=np.random.default_rng(11), batches=5, replications=6)
    assert data == {**json.loads(json.dumps(plan.to_dict())), "seed": 11}
    assert run(*args) == data  # the same seed gives the same answer
    assert data["losing_share_fixed"] == 0.5 and data["lost_conversions_fixed"] == pytest.approx(4000 * 0.005)
    lines = {k.strip(): v.strip() for k, v in text(*args).items()}
    assert lines["campaigns"] == "6 simulated, seed 11"


def test_progress_bar_appears_only_after_the_delay(capsys):
    now = [0.0]
    with progress_after(10, "simulating", hidden=False, delay=1.0, clock=lambda: now[0]) as report:
        report(1)  # quick: nothing shown
        now[0] = 2.0
        report(2)  # slow: the bar appears
        report(10)
    assert "simulating" in capsys.readouterr().err
    with progress_after(10, "simulating", hidden=False, delay=1.0, clock=lambda: 0.0) as report:
        report(10)
    with progress_after(10, "simulating", hidden=True, delay=0.0, clock=lambda: 5.0) as report:
        report(10)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["rate", "--baseline", "0.03"], "--mde / --n: give --mde (sample size), --n (minimum detectable"),
        (["rate", "--baseline", "0.03", "--mde", "0.1", "--direction", "down"], "--direction: only with --n"),
        (["rate", "--baseline", "0.03", "--n", "100", "--direction", "down"],
         "direction must be one of 'increase', 'decrease'; got 'down'."),
        (["rate", "--baseline", "0.03", "--n", "100", "--daily", "10"], "--daily: only for the sample-size"),
        (["rate", "--baseline", "0.03", "--n", "1"], "n_per_arm must be at least 2; got 1."),
        (["rate", "--baseline", "0.03", "--n", str(10**20)], "n_per_arm must be at most 1e15"),
        (["rate", "--baseline", "0.03", "--n", "1000", "--mde", "0"], "mde must not be zero"),
        (["rate", "--baseline", "0.03", "--n", "1000", "--power", "0.01"],
         "power must be greater than the alpha"),
        (["rate", "--baseline", "0.03", "--mde", "0.01", "--curve", "--points", "1"],
         "points must be at least 2"),
        (["mean", "--mde", "1"], "--sd / --values: give the standard deviation or a file of past values"),
        (["mean", "--sd", "1", "--values", "x.csv", "--mde", "1"], "--sd / --values: give one of them"),
        (["mean", "--sd", "1", "--column", "c", "--mde", "1"], "--column: only with --values"),
        (["mean", "--values", "/no/such/past.csv", "--mde", "1"], "/no/such/past.csv: No such file"),
        (["mean", "--sd", "1e308", "--mde", "1e-308"], "mde is too small next to sd"),
        (["mean", "--sd", "1", "--n", "1", "--mde", "1"], "n_per_arm must be at least 2; got 1."),
        (["test-then-send", "--list-size", "1000"], "give exactly one of rates, lift"),
        (["test-then-send", "--list-size", "1000", "--rates", "0.1,ten"],
         "--rates: expected rates separated"),
        (["test-then-send", "--list-size", "1000", "--baseline", "0.1", "--prior-sd", "0.9"],
         "prior_sd must be at most 0.5"),
        (["sequential", "--design", "pocock", "--looks", "11"], "looks must be at most 10"),
        (["sequential", "--design", "wald"], "design must be one of 'msprt', 'pocock', 'obrien_fleming'"),
        (["sequential", "--seed", "-2"], "--seed: must be 0 or more; got -2"),
        (["bandit", "--rates", "0.1,0.1", "--horizon", "100"], "rates are all equal"),
        (["bandit", "--rates", "0.1,0.2", "--horizon", "100", "--replications", "1"],
         "replications must be at least 2"),
        (["bandit", "--rates", "0.1,0.2"], "Missing option '--horizon'"),
        # absurd sizes are refused before any memory is asked for (they were MemoryError tracebacks)
        (["sequential", "--replications", "100000000000"], "'--replications': Input should be less than or "
                                                            "equal to 1000000"),
        (["bandit", "--rates", "0.1,0.2", "--horizon", "100", "--replications", "100000000000"],
         "'--replications': Input should be less than or equal to 10000"),
    ],
)
def test_bad_input_exits_non_zero_with_one_line(args, needle):
    result = runner.invoke(app, ["power", *args], prog_name="sendlab", standalone_mode=True)
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: ") and needle in lines[0], lines[0]


SIZED_COMMANDS = [  # every command taking a number of recipients, with that option
    (["rate", "--baseline", "0.03", "--mde", "0.1"], "--n"),
    (["mean", "--sd", "1", "--mde", "0.1"], "--n"),
    (["rate", "--baseline", "0.03"], "--n"),
    (["rate", "--baseline", "0.03", "--mde", "0.1"], "--daily"),
    (["test-then-send", "--baseline", "0.03", "--lift", "0.15"], "--list-size"),
    (["sequential", "--design", "pocock"], "--fixed-n"),
    (["bandit", "--rates", "0.03,0.036", "--replications", "2", "--draws", "100"], "--horizon"),
]


@pytest.mark.parametrize(("args", "option"), SIZED_COMMANDS)
def test_a_size_may_be_written_as_an_integral_number(args, option):
    # as over HTTP: 2e3 and 2000.0 are 2,000 recipients; 2000.5 is no number of recipients
    assert run(*args, option, "2e3") == run(*args, option, "2000.0") == run(*args, option, "2000")
    result = runner.invoke(app, ["power", *args, option, "2000.5"], prog_name="sendlab")
    assert result.exit_code == 2
    (line,) = [line for line in result.output.splitlines() if line.strip()]
    assert line.startswith("error: sendlab power ") and f"'{option}'" in line
    assert "expected a whole number, such as 20000 or 2e4; got '2000.5'" in line


def test_the_largest_size_the_readme_allows_is_accepted():
    # README: at most 1e15 recipients per arm, as over HTTP
    assert run("rate", "--baseline", "0.03", "--n", "1e15") == answer_without(
        solve_rate(0.03, n_per_arm=10**15), "sd_source")


@pytest.mark.parametrize(
    ("content", "column", "needle"),
    [("revenue\n1\n2\nabc\n", None, "line 4: 'abc' is not a finite number"),
     ("", None, "is empty"),
     ("a,b\n1,\n2,3\n", "b", "line 2, column 'b' is empty; a recipient without a value is a 0"),
     # a blank line between values is a recipient without a value too, in every layout of the file
     ("1\n2\n\n4\n", None, "past.csv: line 3 is empty; a recipient without a value is a 0"),
     ("revenue\n1\n2\n \n4\n", None, "past.csv: line 4 is empty; a recipient without a value is a 0"),
     ("revenue\n1\n2\n\n4\n", "revenue", "past.csv: line 4 is empty; a recipient without a value"),
     ("a,b\n1,2\n\n3,4\n", "b", "past.csv: line 3 is empty; a recipient without a value is a 0"),
     ("revenue\n1\n\n2\nabc\n", None, "past.csv: line 3 is empty"),  # the first problem, by line
     # blank lines before the header hold nobody, and the lines after them keep their numbers
     ("\n\na,b\n1,\n", "b", "past.csv: line 4, column 'b' is empty"),
     ("a,b\n1,2\n", None, "has columns a, b; choose one with --column"),
     ("a,b\n1,2\n", "c", "--column:"),
     ("x\n1\ninf\n", None, "'inf' is not a finite number"),
     ("x\n2\n2\n2\n", None, "values has no spread (all values equal)")],
)
def test_bad_values_files(tmp_path: Path, content: str, column: str | None, needle: str):
    path = tmp_path / "past.csv"
    path.write_text(content)
    extra = ["--column", column] if column else []
    result = runner.invoke(app, ["power", "mean", "--values", str(path), *extra, "--mde", "1"])
    assert result.exit_code == 1
    (line,) = [line for line in result.output.splitlines() if line.strip()]
    assert line.startswith("error: ") and needle in line, line
