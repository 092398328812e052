"""Off-policy estimators side by side with the Open Bandit Pipeline: time per estimate and equal values.

Run: ``python -m benchmarks.estimators`` in an environment that also has OBP 0.4.1, a benchmark-only
peer (``pip install --no-deps obp==0.4.1`` plus ``pyyaml``, ``tqdm``, ``matplotlib`` and ``seaborn``,
which ``obp.ope`` imports; it is not a SendLab dependency, and neither is torch). OBP imports torch
for its neural policies; without torch, this benchmark serves stand-in modules for ``torch`` and
``torch.*`` (empty classes; none is called).

1,000,000 logged rounds over 10 actions, a stochastic target, a reward model's predictions. Each
estimator's time is the median of ``--rounds`` interleaved calls: SendLab's
``estimate_policy_value`` (the estimate, its standard error and interval, weight diagnostics, checks
of what it reads) against OBP's ``estimate_policy_value`` (the point estimate with OBP's own input
checks). The values must agree to 1e-12.
"""

from __future__ import annotations

import argparse
import importlib.abc
import importlib.machinery
import statistics
import sys
import time
import types
from collections.abc import Callable

import numpy as np

from benchmarks.report import format_table, write_section
from simulations.data import LoggedData
from simulations.estimators import estimate_policy_value

N, K = 1_000_000, 10


class _StandIn(types.ModuleType):
    """An empty module: a capitalised attribute is an empty class (``torch.Tensor`` in annotations and
    ``isinstance`` checks, ``nn.Module`` as a base class), any other a stand-in submodule or function."""

    def __getattr__(self, name: str) -> object:
        if name.startswith("__"):
            raise AttributeError(name)
        made: object = type(name, (), {}) if name[:1].isupper() else _StandIn(f"{self.__name__}.{name}")
        setattr(self, name, made)
        return made


class _StandInFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``torch`` and ``torch.*`` as stand-ins."""

    def find_spec(self, fullname: str, path: object,
                  target: object = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != "torch" and not fullname.startswith("torch."):
            return None
        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return _StandIn(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        module.__path__ = []  # type: ignore[attr-defined]


def _import_obp() -> types.ModuleType:
    try:
        import torch  # noqa: F401
    except ModuleNotFoundError:
        sys.meta_path.insert(0, _StandInFinder())  # OBP's neural policies import torch; never called here
    import obp.ope

    return obp.ope


def make_rounds(n: int, seed: int = 0) -> tuple[LoggedData, np.ndarray, np.ndarray]:
    """A log of ``n`` rounds: data, the target's ``(n, K)`` probabilities, the model's predictions."""
    rng = np.random.default_rng(seed)
    logging = rng.dirichlet(np.ones(K), size=n)
    actions = (logging.cumsum(axis=1) < rng.random(n)[:, None]).sum(axis=1).clip(0, K - 1)
    propensities = logging[np.arange(n), actions]
    rates = rng.uniform(0.02, 0.2, K)
    rewards = (rng.random(n) < rates[actions]).astype(float)
    target = rng.dirichlet(np.ones(K), size=n)
    predictions = np.clip(rates + rng.normal(0, 0.01, (n, K)), 0, 1)
    data = LoggedData(np.zeros((n, 0)), actions, rewards, propensities, tuple(f"a{i}" for i in range(K)))
    return data, target, predictions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=N)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    ope = _import_obp()
    data, target, q = make_rounds(args.n)
    dist, q3 = target[:, :, None], q[:, :, None]
    obp_estimators = {
        "ips": (ope.InverseProbabilityWeighting(), {}),
        "snips": (ope.SelfNormalizedInverseProbabilityWeighting(), {}),
        "dr": (ope.DoublyRobust(), {"estimated_rewards_by_reg_model": q3}),
    }
    runs: dict[str, Callable[[], float]] = {}
    for name, (estimator, extra) in obp_estimators.items():
        runs[f"obp {name}"] = lambda estimator=estimator, extra=extra: float(estimator.estimate_policy_value(
            reward=data.rewards, action=data.actions, pscore=data.propensities, action_dist=dist, **extra))
        runs[f"sendlab {name}"] = lambda name=name: estimate_policy_value(
            name, data, target, q if name == "dr" else None).value  # type: ignore[arg-type]
    times: dict[str, list[float]] = {label: [] for label in runs}
    values: dict[str, float] = {}
    for _ in range(args.rounds):
        for label, run in runs.items():
            start = time.perf_counter()
            values[label] = run()
            times[label].append(time.perf_counter() - start)
    rows = []
    for name in obp_estimators:
        ours, theirs = statistics.median(times[f"sendlab {name}"]), statistics.median(times[f"obp {name}"])
        difference = abs(values[f"sendlab {name}"] - values[f"obp {name}"])
        rows.append([name, f"{args.n:,}", K, f"{theirs * 1e3:.3g}", f"{ours * 1e3:.3g}",
                     f"{ours / theirs:.2f}", f"{values[f'sendlab {name}']:.15g}", f"{difference:.1e}"])
    headers = ["estimator", "rounds", "actions", "OBP ms", "SendLab ms", "SendLab / OBP",
               "value", "|SendLab - OBP|"]
    notes = (
        f"Medians of {args.rounds} interleaved calls on the same arrays. Goals of issue 19: IPS, SNIPS and "
        "DR at most 0.5x OBP's time, values equal to 1e-12. SendLab's time includes the standard error, "
        "the interval, the weight diagnostics and the checks of what it reads; OBP's, its point estimate "
        "and input checks. OBP 0.4.1 ran in a separate virtual environment that also sees SendLab's "
        "packages."
    )
    command = "OPENBLAS_NUM_THREADS=1 python -m benchmarks.estimators"
    command += "" if args.n == N else f" --n {args.n}"
    command += "" if args.rounds == 7 else f" --rounds {args.rounds}"
    write_section("estimators", "Off-policy estimators against the Open Bandit Pipeline", command,
                  format_table(headers, rows), notes)


if __name__ == "__main__":
    main()
