"""The time-related keys of a scenario: event delays, rates that drift, policies, the drift monitor.

::

    timing:
      interval_hours: 24            # between two sends (waves)
      window_hours: 168             # the reward window: later events are not attributed
      delays:                       # per event type, hours from send to event
        conversion: {type: lognormal, median_hours: 60, sigma: 0.5}
      reward_event: conversion      # the event the segments' rates describe (default: the only one)
      event_rates:                  # every other event of delays: its rate per variant (not rewarded)
        click: {plain: 0.20, urgent: 0.22, emoji: 0.25}
    drift:                          # applied in order to every segment (or the one named)
      - {at_send: 10, rates: {plain: 0.03, emoji: 0.09}}                    # a step at the 10th send
      - {from_send: 1, to_send: 14, segment: new, rates: {urgent: 0.04}}    # linear, then held
    policies:                       # named runs: a policy, its options and how it learns in time
      waiting: {policy: thompson, delays: wait}
      delay-aware: {policy: thompson, delays: model, delay_model: exponential}
      discounted: {policy: thompson, options: {discount: 0.5}}
    monitor: {horizon: 90, false_alarm_rate: 0.05, min_arrival: 0.5}

Sends are numbered from 1. ``delays`` (of a policy) is how it learns before a decision's window has
closed: ``wait`` learns a decision once its window has closed; ``zero`` learns every decision sent,
with reward 0 until its event arrives (then revised to 1); ``model`` learns a decision without its
event as a fraction :math:`F(e)` of a trial (:mod:`analysis.delays`), revised as time passes and to a
whole trial when the event arrives or the window closes. ``delay_model`` is how :math:`F` is estimated
from the log at each learning: ``exponential`` (Chapelle's model), ``lognormal`` (the same with a
lognormal delay), or ``kaplan_meier`` once some
decisions have been followed for the whole window (the exponential model until then: before, the
Kaplan–Meier estimate cannot tell how many events are still to come).

An event other than the reward event (``event_rates``) happens to a recipient with its rate for the
variant sent, independently of the reward event (a conversion does not need a click here), after a
delay drawn from its own distribution; it is counted and its delays kept, but never rewarded nor
learned from, and ``drift`` does not move its rates.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy import special

from analysis.delays import DelayModelKind

_STRICT = ConfigDict(frozen=True, extra="forbid")


class ExponentialDelay(BaseModel):
    """An exponential delay with mean ``mean_hours``."""

    model_config = _STRICT
    type: Literal["exponential"]
    mean_hours: float = Field(gt=0)

    def draw(self, uniforms: np.ndarray) -> np.ndarray:
        """Delays in hours from uniforms on [0, 1) (inverse CDF)."""
        return -self.mean_hours * np.log1p(-uniforms)

    def cdf(self, hours: float) -> float:
        return float(-np.expm1(-hours / self.mean_hours))


class LognormalDelay(BaseModel):
    """A lognormal delay: ``median_hours`` and ``sigma`` (the sd of the log)."""

    model_config = _STRICT
    type: Literal["lognormal"]
    median_hours: float = Field(gt=0)
    sigma: float = Field(gt=0)

    def draw(self, uniforms: np.ndarray) -> np.ndarray:
        return self.median_hours * np.exp(self.sigma * special.ndtri(uniforms))

    def cdf(self, hours: float) -> float:
        return float(special.ndtr(np.log(hours / self.median_hours) / self.sigma)) if hours > 0 else 0.0


class UniformDelay(BaseModel):
    """A delay uniform on ``[low_hours, high_hours)``."""

    model_config = _STRICT
    type: Literal["uniform"]
    low_hours: float = Field(ge=0)
    high_hours: float

    @model_validator(mode="after")
    def _ordered(self) -> UniformDelay:
        if not self.low_hours < self.high_hours:
            raise ValueError(f"low_hours ({self.low_hours}) must be below high_hours ({self.high_hours})")
        return self

    def draw(self, uniforms: np.ndarray) -> np.ndarray:
        return self.low_hours + (self.high_hours - self.low_hours) * uniforms

    def cdf(self, hours: float) -> float:
        return float(np.clip((hours - self.low_hours) / (self.high_hours - self.low_hours), 0.0, 1.0))


Delay = Annotated[ExponentialDelay | LognormalDelay | UniformDelay, Field(discriminator="type")]


class Timing(BaseModel):
    """When sends go out and when their events arrive."""

    model_config = _STRICT
    interval_hours: float = Field(24.0, gt=0)
    window_hours: float = Field(72.0, gt=0)
    delays: dict[str, Delay] = Field(min_length=1)
    reward_event: str | None = None
    event_rates: dict[str, dict[str, float]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _reward_event(self) -> Timing:
        if self.reward_event is None and len(self.delays) > 1:
            raise ValueError(f"reward_event: name which of {list(self.delays)} the rates describe")
        event = self.event
        if event not in self.delays:
            raise ValueError(f"reward_event: {event!r} has no delay (delays give {list(self.delays)})")
        unrated = [e for e in self.delays if e != event and e not in self.event_rates]
        if unrated:
            raise ValueError(f"event_rates: give the rates of {unrated} (events besides the reward, {event})")
        undelayed = [e for e in self.event_rates if e not in self.delays or e == event]
        if undelayed:
            raise ValueError(f"event_rates: {undelayed} must be events of delays other than the reward "
                             f"({event})")
        bad = {e: r for e, rates in self.event_rates.items() for r in rates.values() if not 0 <= r <= 1}
        if bad:
            raise ValueError(f"event_rates: must be in [0, 1], got {bad}")
        return self

    @property
    def others(self) -> list[str]:
        """The events simulated besides the rewarded one (logged, never rewarded)."""
        return list(self.event_rates)

    @property
    def event(self) -> str:
        """The rewarded event type."""
        return self.reward_event if self.reward_event is not None else next(iter(self.delays))

    @property
    def delay(self) -> ExponentialDelay | LognormalDelay | UniformDelay:
        """The rewarded event's delay distribution."""
        return self.delays[self.event]

    @property
    def in_window(self) -> float:
        """P(an event arrives within the window), which scales every rate into a reward rate."""
        return self.delay.cdf(self.window_hours)


class RateChange(BaseModel):
    """New rates from one send on (``at_send``), or reached linearly from ``from_send`` to ``to_send``."""

    model_config = _STRICT
    rates: dict[str, float] = Field(min_length=1)
    segment: str | None = None
    at_send: int | None = Field(None, ge=1)
    from_send: int | None = Field(None, ge=1)
    to_send: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _one_form(self) -> RateChange:
        step = self.at_send is not None
        linear = self.from_send is not None or self.to_send is not None
        if step == linear:
            raise ValueError("give either at_send (a step) or from_send and to_send (linear)")
        if linear and (self.from_send is None or self.to_send is None or self.from_send >= self.to_send):
            raise ValueError("from_send and to_send go together, from_send before to_send")
        bad = {k: v for k, v in self.rates.items() if not 0 <= v <= 1}
        if bad:
            raise ValueError(f"rates: must be in [0, 1], got {bad}")
        return self

    def share(self, send: int) -> float:
        """How far the change has gone at a send: 0 (not yet) to 1 (complete)."""
        if self.at_send is not None:
            return float(send >= self.at_send)
        start, end = self.from_send or 0, self.to_send or 0
        return float(np.clip((send - start) / (end - start), 0.0, 1.0))


class PolicySpec(BaseModel):
    """A named run: which policy, its options, and how it learns before a window closes."""

    model_config = _STRICT
    policy: str
    options: dict[str, object] = Field(default_factory=dict)
    delays: Literal["wait", "zero", "model"] = "wait"
    delay_model: DelayModelKind = "exponential"


class Monitor(BaseModel):
    """The drift monitor's calibration (:func:`analysis.drift.monitor_drift`)."""

    model_config = _STRICT
    horizon: int = Field(90, ge=1, le=3650)
    false_alarm_rate: float = Field(0.05, gt=0, lt=1)
    min_arrival: float = Field(0.5, gt=0, le=1)
