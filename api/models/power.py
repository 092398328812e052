"""Power and sample-size models: the options of ``analysis.power_rates`` / ``power_means`` as JSON.

Only types are checked here; the value checks (ranges, a zero effect, ...) are the analysis layer's,
so the API and the command line give the same messages.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


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


class MeanPowerRequest(PowerOptions):
    """``POST /v1/power/mean``: recipients needed to detect a change of a mean (revenue per email)."""

    sd: float = Field(description="Standard deviation of the value per recipient.", examples=[12.0])
    baseline_mean: float | None = Field(None, description="Control mean; needed for a relative mde.")
    method: Literal["statsmodels", "normal"] = "statsmodels"


class PowerPlanPublic(BaseModel):
    """The plan: recipients per arm (control), every arm's size, the total, days, and the method."""

    model_config = ConfigDict(extra="allow")

    per_arm: int
    per_arm_sizes: list[int]
    total: int
    days: int | None
    method: str
    details: dict[str, Any] = {}
