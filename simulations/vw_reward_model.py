"""A reward model fitted by Vowpal Wabbit regression (the variant crossed with the context features).

This module alone talks to Vowpal Wabbit for the estimators; it builds one text example per row and
variant, always finishes its examples, and passes an explicit random seed.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simulations.data import Contexts, LoggedData, context_mappings, is_frame
from simulations.feature_columns import FeatureColumns

_UNSAFE = re.compile(r"[\s|:]")


def _clean(text: object) -> str:
    return _UNSAFE.sub("_", str(text))


def _features(context: Mapping[str, object] | np.ndarray) -> str:
    if isinstance(context, np.ndarray):
        return " ".join(f"x{j}:{float(v)!r}" for j, v in enumerate(context))
    parts = []
    for key, value in context.items():
        if isinstance(value, bool | str):
            parts.append(f"{_clean(key)}={_clean(value)}")
        else:
            parts.append(f"{_clean(key)}:{float(value)!r}")
    return " ".join(parts)


def _rows(contexts: Contexts) -> Contexts:
    by_column = is_frame(contexts) or isinstance(contexts, FeatureColumns)
    return context_mappings(contexts) if by_column else contexts


@dataclass(frozen=True)
class VWRewardModel:
    """Predicts with a VW regressor restored from its model bytes.

    Attributes
    ----------
    model : bytes
        The VW model file's bytes (written to and read from a temporary file, as VW's Python API
        has no in-memory model transfer).
    n_actions : int
    reward_range : tuple of float
        Predictions are clipped into the range of the training rewards.
    """

    model: bytes
    n_actions: int
    reward_range: tuple[float, float]

    def predict(self, contexts: Contexts) -> np.ndarray:
        """Predicted expected rewards, shape ``(n, k)``."""
        import vowpalwabbit

        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "model.vw"
            path.write_bytes(self.model)
            workspace = vowpalwabbit.Workspace(arg_list=["--quiet", "-i", str(path)])
        try:
            out = np.empty((len(contexts), self.n_actions))
            rows = _rows(contexts)
            for i, context in enumerate(rows):
                features = _features(context)
                for a in range(self.n_actions):
                    out[i, a] = workspace.predict(f"|a a{a} |x {features}")
        finally:
            workspace.finish()
        return np.clip(out, *self.reward_range)


def fit_vw_reward_model(data: LoggedData, *, passes: int = 1, seed: int = 0) -> VWRewardModel:
    """Fit squared-loss VW regression on ``reward |a variant |x features`` with ``-q ax``."""
    import vowpalwabbit

    workspace = vowpalwabbit.Workspace(
        f"--quiet --loss_function squared -q ax --random_seed {int(seed)} --learning_rate 0.5"
    )
    try:
        rewards = np.asarray(data.rewards, dtype=float)
        lines = [
            f"{float(r)!r} |a a{int(a)} |x {_features(c)}"
            for c, a, r in zip(_rows(data.contexts), data.actions, rewards, strict=True)
        ]
        for _ in range(max(1, passes)):
            for line in lines:
                workspace.learn(line)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "model.vw"
            workspace.save(str(path))
            model = path.read_bytes()
    finally:
        workspace.finish()
    return VWRewardModel(model, data.n_actions, (float(rewards.min()), float(rewards.max())))
