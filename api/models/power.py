"""Power and sample-size requests: the options of ``analysis.power`` as JSON.

Only types are checked here; the value checks (ranges, a zero effect, ...) are the analysis layer's,
so the API and the command line give the same messages. The answers are the analysis layer's own
types (``RateAnswer``, ``MeanAnswer``, ``PowerCurve``, ...), served as they are; only the sample-size
answer has an envelope of its own (:class:`PowerPlanPublic`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class PowerOptions(BaseModel):
    """Options shared by the rate and mean calculations."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    mde: float = Field(description="Minimum detectable effect (negative plans for a decrease).")
    relative: bool = Field(False, description="Read mde as a share of the baseline (0.10 = +10%).")
    alpha: float = Field(0.05, description="Family-wise significance level.")
    power: float = Field(0.8, description="Probability of detecting the effect.")
    alternative: Literal["two-sided", "one-sided"] = "two-sided"
    arms: int = Field(2, description="Number of arms, the control included.")
    ratio: float = Field(1.0, description="Size of each treatment arm relative to the control.")
    daily: int | None = Field(None, description="Emails sent per day; gives the days needed.")
    traffic_share: float = Field(1.0, description="Share of the daily volume in the test.")
    correction: Literal["bonferroni", "none"] = "bonferroni"


class RatePowerRequest(PowerOptions):
    """``POST /v1/power/rate``: recipients needed to detect a change of a rate."""

    baseline: float = Field(description="Control rate, in (0, 1).", examples=[0.03])
    method: Literal["statsmodels", "unpooled"] = "statsmodels"


class PowerPlanPublic(BaseModel):
    """The plan: recipients per arm (control), every arm's size, the total, days, and the method."""

    model_config = ConfigDict(extra="allow")

    per_arm: int
    per_arm_sizes: list[int]
    total: int
    days: int | None
    method: str
    details: dict[str, Any] = {}


# ---- the sd of a value: given, or from past values or their summary statistics ----------------------


class SummaryStatsIn(BaseModel):
    """Summary statistics of past values per recipient, as the store's SQL produces them."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    n: int = Field(ge=2, description="Recipients, zeros included.")
    sum: float = Field(description="Sum of the values.")
    sum_squares: float = Field(ge=0, description="Sum of the squared values.")


class ValueSpread(BaseModel):
    """Where the standard deviation of a value per recipient comes from: ``sd``, ``values`` or ``summary``."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    sd: float | None = Field(None, description="Standard deviation of the value per recipient.",
                             examples=[12.0])
    values: list[float] | None = Field(
        None, max_length=1_000_000,
        description="Past values per recipient (zeros included): give the sd (ddof=1) and the baseline mean.",
    )
    summary: SummaryStatsIn | None = Field(None, description="Summary statistics of past values instead.")
    baseline_mean: float | None = Field(None, description="Control mean; needed for a relative mde "
                                        "unless values or summary give it.")
    method: Literal["statsmodels", "normal"] = "statsmodels"

    @model_validator(mode="after")
    def _one_source(self) -> ValueSpread:
        if self.values is not None and self.summary is not None:
            raise ValueError("values and summary were both given; give one of them")
        return self


class MeanPowerRequest(PowerOptions, ValueSpread):
    """``POST /v1/power/mean``: recipients needed to detect a change of a mean (revenue per email)."""


# ---- inverse questions -------------------------------------------------------------------------------


class TestOptions(BaseModel):
    """Options every question about a planned test shares."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    alpha: float = Field(0.05, description="Family-wise significance level.")
    alternative: Literal["two-sided", "one-sided"] = "two-sided"
    arms: int = Field(2, description="Number of arms, the control included.")
    ratio: float = Field(1.0, description="Size of each treatment arm relative to the control.")
    correction: Literal["bonferroni", "none"] = "bonferroni"


class RateMdeRequest(TestOptions):
    """``POST /v1/power/rate/mde``: the smallest change of a rate ``n_per_arm`` recipients per arm detect."""

    baseline: float = Field(description="Control rate, in (0, 1).", examples=[0.03])
    n_per_arm: int = Field(description="Recipients in the control arm.", examples=[20_000])
    power: float = Field(0.8, description="Probability of detecting the effect.")
    direction: Literal["increase", "decrease"] = "increase"
    method: Literal["statsmodels", "unpooled"] = "statsmodels"


class RatePowerForSizeRequest(TestOptions):
    """``POST /v1/power/rate/power``: the power of a rate test of ``n_per_arm`` against ``mde``."""

    baseline: float = Field(description="Control rate, in (0, 1).", examples=[0.03])
    mde: float = Field(description="The effect (negative for a decrease).", examples=[0.10])
    relative: bool = Field(False, description="Read mde as a share of the baseline.")
    n_per_arm: int = Field(description="Recipients in the control arm.", examples=[20_000])
    method: Literal["statsmodels", "unpooled"] = "statsmodels"


class MeanMdeRequest(TestOptions, ValueSpread):
    """``POST /v1/power/mean/mde``: the smallest change of a mean ``n_per_arm`` recipients per arm detect."""

    n_per_arm: int = Field(description="Recipients in the control arm.", examples=[20_000])
    power: float = Field(0.8, description="Probability of detecting the effect.")
    direction: Literal["increase", "decrease"] = "increase"


class MeanPowerForSizeRequest(TestOptions, ValueSpread):
    """``POST /v1/power/mean/power``: the power of a test of a mean of ``n_per_arm`` against ``mde``."""

    mde: float = Field(description="The effect in the value's units (or relative).", examples=[0.5])
    relative: bool = Field(False, description="Read mde as a share of the baseline mean.")
    n_per_arm: int = Field(description="Recipients in the control arm.", examples=[20_000])


# ---- power curves ------------------------------------------------------------------------------------


class CurveOptions(TestOptions):
    """What a power curve holds fixed and where it is evaluated."""

    mde: float | None = Field(None, description="The effect held fixed for a curve over n.")
    relative: bool = Field(False, description="Read mde as a share of the baseline.")
    n_per_arm: int | None = Field(None, description="The control-arm size held fixed for a curve over "
                                  "the effect.")
    over: Literal["n", "effect"] | None = Field(
        None, description="x axis: n (needs mde) or effect (needs n_per_arm); by default n when mde is "
        "given, the effect otherwise.")
    x: list[float] | None = Field(None, max_length=1000, description="The sizes or absolute effects to "
                                  "evaluate; by default `points` values around the target.")
    points: int = Field(25, description="Points on the default x axis (2 to 1,000).")
    power: float = Field(0.8, description="The target power marked on the curve.")


class RateCurveRequest(CurveOptions):
    """``POST /v1/power/rate/curve``: power against n or against the effect for a rate."""

    baseline: float = Field(description="Control rate, in (0, 1).", examples=[0.03])
    method: Literal["statsmodels", "unpooled"] = "statsmodels"


class MeanCurveRequest(CurveOptions, ValueSpread):
    """``POST /v1/power/mean/curve``: power against n or against the effect for a mean."""


# ---- test then send, sequential, bandit --------------------------------------------------------------


class TestThenSendRequest(BaseModel):
    """``POST /v1/power/test-then-send``: the share of a known list to test before sending the winner.

    Give ``rates``; or ``baseline`` with ``lift``; or ``baseline`` with ``prior_sd``.
    """

    __test__ = False  # not a pytest class despite the name
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    list_size: int = Field(description="Recipients on the list.", examples=[200_000])
    baseline: float | None = Field(None, description="Control rate, in (0, 1).", examples=[0.03])
    lift: float | None = Field(None, description="The treatment's effect (relative unless relative is "
                               "false).", examples=[0.15])
    relative: bool = Field(True, description="Read lift as a share of the baseline.")
    rates: list[float] | None = Field(None, max_length=10, description="The true rate of each arm, "
                                      "control first.")
    prior_sd: float | None = Field(None, description="Spread of a normal prior of the arms' rates.")
    arms: int = Field(2, description="Arms with a prior (rates sets it otherwise).")
    alpha: float = Field(0.05, description="Significance level of the reported power.")
    correction: Literal["bonferroni", "none"] = "bonferroni"


class SequentialRequest(BaseModel):
    """``POST /v1/power/sequential``: how much larger the sample is when the analysis is sequential."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    design: Literal["msprt", "pocock", "obrien_fleming"] = "msprt"
    alpha: float = Field(0.05, description="Two-sided significance level.")
    power: float = Field(0.8, description="Power, as for the fixed test.")
    looks: int | None = Field(None, description="Analyses (Pocock, O'Brien-Fleming: 1 to 10, default 5) "
                              "or mSPRT checks per fixed sample (default 100).")
    mixing_ratio: float = Field(1.0, description="mSPRT mixing sd over the planned effect.")
    replications: int = Field(20_000, description="mSPRT simulated paths.")
    fixed_n: int | None = Field(None, description="A fixed-sample size to inflate.", examples=[53_182])
    seed: int = Field(0, ge=0, description="Seeds the simulation or the integration; returned.")


class BanditPlanRequest(BaseModel):
    """``POST /v1/power/bandit``: traffic to losing variants, Thompson sampling against a fixed test."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    rates: list[float] = Field(max_length=20, description="Assumed true rate of each arm, control first.",
                               examples=[[0.03, 0.036]])
    horizon: int = Field(description="Sends in the campaign.", examples=[100_000])
    batches: int = Field(20, description="Batches the sends go out in; the bandit learns between them.")
    replications: int = Field(200, description="Simulated campaigns.")
    n_draws: int = Field(1000, description="The policy's draws for its probabilities of being best.")
    alpha: float = Field(0.05, description="For the fixed test's power.")
    correction: Literal["bonferroni", "none"] = "bonferroni"
    seed: int = Field(0, ge=0, description="Seeds the simulation; returned.")
