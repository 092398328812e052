"""The Vowpal Wabbit contextual bandit (``--cb_explore_adf``): the one class that talks to VW."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bandit.inputs import Feedback, check_allowed, check_feature, context_rows
from bandit.options import check_min_share, check_n_actions, check_seed, default_min_share
from bandit.policy import Contexts, FeatureValue, Policy, PolicyError
from bandit.row_changes import added_rows
from bandit.sampling import with_min_share
from bandit.snapshot import Restorable, encode_snapshot
from bandit.vw_options import parse_vw_args
from bandit.vw_text import (
    ACTION_NAMESPACE,
    SHARED_NAMESPACE,
    action_line,
    escape,
    feature_token,
    labelled,
    shared_line,
)

if TYPE_CHECKING:
    import vowpalwabbit

DEFAULT_VW_ARGS = "--cb_explore_adf --squarecb -q UA"
#: VW hashes a quadratic feature of ``a`` and ``b`` as ``(hash(a) * FNV_PRIME) ^ hash(b)`` (32-bit FNV).
FNV_PRIME = 16_777_619


def reward_to_cost(rewards: np.ndarray) -> np.ndarray:
    """VW minimises cost; SendLab maximises reward. The one place the sign flips: cost = -reward."""
    return -rewards


def _workspace(arguments: list[str]) -> vowpalwabbit.Workspace:
    """A VW workspace; Vowpal Wabbit is imported here, on first use, so ``import bandit`` stays light."""
    import vowpalwabbit

    return vowpalwabbit.Workspace(arg_list=arguments)


def _vw_reason(exc: BaseException) -> str:
    """VW's complaint about its arguments, in SendLab's words where we recognise it."""
    text = str(exc).strip()
    match = re.fullmatch(r"unrecogni[sz]ed option '(.+)'", text)
    return f"unknown option {match.group(1)}" if match else f"Vowpal Wabbit rejected them: {text}"


@lru_cache(maxsize=64)
def _vw_accepts(tokens: tuple[str, ...]) -> str | None:
    """None when VW builds a workspace from the allowed ``tokens``, else why not (cached: a pure answer).

    Only ever called with the output of :func:`parse_vw_args`, so VW never sees an option that could
    name a file.
    """
    try:
        _workspace(["--quiet", *tokens]).finish()
    except Exception as exc:  # VW raises plain RuntimeError / ValueError for bad combinations
        return _vw_reason(exc)
    return None


def check_vw_command(vw_args: object) -> str:
    """:func:`parse_vw_args` (SendLab's allowlist), then VW checks the combination of allowed options.

    Raises
    ------
    PolicyError
        ``options.vw_args: --final_regressor is not an option SendLab allows in vw_args`` and the like.
    """
    reason = _vw_accepts(tuple(parse_vw_args(vw_args)))
    if reason is not None:
        raise PolicyError(f"options.vw_args: {reason}")
    assert isinstance(vw_args, str)
    return vw_args


class VWContextualBandit(Restorable, Policy):
    """A Vowpal Wabbit ``--cb_explore_adf`` policy with shared recipient and per-action features.

    Each decision is one multi-line example: ``shared |User <recipient features>`` and one
    ``|Action _action=<i> <action features>`` line per allowed action (disallowed actions are left
    out, so VW's pmf covers exactly the allowed ones). Exploration (``--epsilon``, ``--softmax``,
    ``--bag``, ``--cover``, ``--squarecb``) comes from ``vw_args``; use ``-q UA`` to cross recipient
    and action features. Every allowed action is then raised to at least ``min_share`` of the
    probability (:func:`bandit.sampling.with_min_share`; a pmf already above it is unchanged), the action
    is drawn with the caller's generator from that distribution, and its probability is the propensity
    VW later learns with. ``explored`` is True where the drawn action is not among those of highest
    probability, ties included (:func:`bandit.sampling.top_set`; VW's float32 pmf makes near-ties).

    A snapshot holds VW's own model file (which carries its learning and random state). A restored
    policy makes the same draws from the same generator; its pmf can differ from the live workspace's
    in the last float32 bit (VW recomputes scores after a reload; seen with ``--softmax`` and
    ``--squarecb``), and a snapshot of a restored policy restores bit for bit.

    Updates are learned one example per row with the label ``0:cost:propensity`` on the chosen action;
    pass the decision-time ``allowed`` mask to ``update`` so the example holds the same actions as the
    decision (otherwise every action is present). VW's labels carry no trial weight, so ``update``
    refuses ``weights`` other than 1; ``times`` are checked and ignored.

    A reward once learned cannot be replaced (``can_revise`` is False; ``revise`` raises
    :class:`bandit.policy.RevisionUnsupported`): VW's online updates keep no sufficient statistics
    from which one example could be taken back exactly.

    Parameters
    ----------
    n_actions : int
    vw_args : str
        VW command line; must contain ``--cb_explore_adf``. ``--quiet`` and ``--random_seed`` are added.
    action_features : sequence of mappings, length n_actions, optional
        Features of each action (e.g. tone, length of a subject line).
    seed : int
        VW's ``--random_seed`` (bagging and cover use it while learning).
    min_share : float in [0, 1 / n_actions], optional
        The least probability of each allowed action; default :func:`bandit.options.default_min_share`.
    """

    tag = "vw"

    def __init__(
        self,
        n_actions: int,
        *,
        vw_args: str = DEFAULT_VW_ARGS,
        action_features: Sequence[Mapping[str, FeatureValue]] | None = None,
        seed: int = 0,
        min_share: float | None = None,
        _model: bytes | None = None,
    ) -> None:
        self.n_actions = check_n_actions(n_actions)
        self.vw_args = vw_args
        self.seed = check_seed(seed)
        k = self.n_actions
        self.min_share = default_min_share(k) if min_share is None else check_min_share(min_share, k)
        self.action_features = self._check_action_features(action_features)
        self._action_lines = [action_line(i, f) for i, f in enumerate(self.action_features)]
        arguments = [*parse_vw_args(vw_args), "--quiet"]
        if _model is None:
            self._workspace = self._open([*arguments, "--random_seed", str(self.seed)])
        else:  # the model file carries VW's random state, so the seed is not passed again
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / "model.vw"
                path.write_bytes(_model)
                self._workspace = self._open([*arguments, "--initial_regressor", str(path)])

    @staticmethod
    def _open(arguments: list[str]) -> vowpalwabbit.Workspace:
        try:
            return _workspace(arguments)
        except Exception as exc:  # VW raises plain RuntimeError-like errors for bad arguments
            command = " ".join(arguments)
            raise PolicyError(f"options.vw_args: Vowpal Wabbit rejected {command!r}: {exc}") from None

    def _check_action_features(
        self, action_features: Sequence[Mapping[str, FeatureValue]] | None
    ) -> list[dict[str, FeatureValue]]:
        if action_features is None:
            return [{} for _ in range(self.n_actions)]
        if isinstance(action_features, str | bytes) or not isinstance(action_features, Sequence):
            raise PolicyError("action_features: expected a list of mappings, one per action")
        if len(action_features) != self.n_actions:
            raise PolicyError(
                f"action_features: expected {self.n_actions} mappings, got {len(action_features)}"
            )
        out = []
        for i, features in enumerate(action_features):
            if not isinstance(features, Mapping):
                raise PolicyError(f"action_features[{i}]: expected a mapping, got {type(features).__name__}")
            for name, value in features.items():
                check_feature(name, value, where=f"action_features[{i}]")
            out.append(dict(features))
        return out

    def _predict(self, lines: list[str]) -> list[float]:
        """VW's pmf for one multi-line example (shared line first); always finishes the examples."""
        examples = self._workspace.parse(lines)
        try:
            return self._workspace.predict(examples)
        finally:
            self._workspace.finish_example(examples)

    def _interactions(self) -> set[str]:
        """The namespace interactions VW builds (``-q UA`` gives ``{"UA"}``), as VW reports its options."""
        tokens = str(self._workspace.get_arguments()).split()
        names = {"--quadratic", "--interactions", "--cubic", "-q"}
        return {value for option, value in zip(tokens, tokens[1:], strict=False) if option in names}

    def score_terms(
        self, context: Mapping[str, FeatureValue], allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
        """VW's linear score of each allowed action for one recipient, split into weight x value terms.

        VW scores an action (its predicted cost) as the sum of weight x value over the features of the
        action's example: the action's own features (and VW's constant), the recipient's shared
        features, and with ``-q UA`` each shared feature crossed with each action feature. The weights
        are read from VW's weight table at the indices VW hashes the features to (``hash_feature`` in
        the ``User`` namespace; ``(h_user * FNV_PRIME) ^ h_action`` for a quadratic feature, masked to
        the table), and the terms are checked to add up to VW's own score of every allowed action.

        Parameters
        ----------
        context : mapping of str to feature value
            One recipient's features (``None`` values are missing and left out).
        allowed : ndarray of bool, shape (n_actions,), optional
            The actions present in the example (default: all).

        Returns
        -------
        (scores, attribute_to_terms) or None
            ``scores``, shape (n_actions,): VW's score (predicted cost) per action, NaN where not
            allowed. ``attribute_to_terms[name]``, shape (n_actions,): the part of each score the
            attribute's features carry (its shared feature and its quadratic features). None when the
            weights cannot be read this way: interactions other than ``-q UA``, or terms that do not
            add up to VW's scores (several models, as with ``--bag`` or ``--cover``).
        """
        interactions = self._interactions()
        if interactions - {"UA"}:
            return None
        row = context_rows([context])[0]
        mask = np.ones(self.n_actions, dtype=bool) if allowed is None else np.asarray(allowed, dtype=bool)
        actions = np.flatnonzero(mask)
        ws = self._workspace
        table = ws.num_weights() - 1  # the weight table has a power-of-two size
        user = ws.hash_space(SHARED_NAMESPACE)
        shared = {}
        for name, value in row.items():
            if value is None:
                continue
            numeric = not isinstance(value, str | bool | np.bool_)
            token = escape(name) if numeric else feature_token(name, value)
            shared[name] = (ws.hash_feature(token, user) & table, float(value) if numeric else 1.0)
        examples = ws.parse([shared_line(row), *(self._action_lines[a] for a in actions)])
        try:
            ws.predict(examples)
            scores = np.full(self.n_actions, np.nan)
            terms = {name: np.zeros(self.n_actions) for name in shared}
            for a, example in zip(actions, examples[1:], strict=True):
                scores[a] = example.get_partial_prediction()
                own, action_features = 0.0, []
                for n in range(example.num_namespaces()):
                    namespace = example.get_ns(n)
                    for i in range(example.num_features_in(namespace)):
                        index, x = example.feature(namespace, i) & table, example.feature_weight(namespace, i)
                        own += ws.get_weight(index) * x
                        if namespace.ns == ACTION_NAMESPACE[0]:
                            action_features.append((index, x))
                for name, (h, x) in shared.items():
                    total = ws.get_weight(h) * x
                    if interactions:
                        for g, y in action_features:
                            total += ws.get_weight(((h * FNV_PRIME) ^ g) & table) * x * y
                    terms[name][a] = total
                explained = own + sum(t[a] for t in terms.values())
                if not np.isclose(explained, scores[a], rtol=1e-4, atol=1e-5):
                    return None
        finally:
            ws.finish_example(examples)
        return scores, terms

    def probabilities(self, contexts: Contexts, allowed: np.ndarray | None = None) -> np.ndarray:
        """VW's pmf per row renormalised in float64 and floored at ``min_share``, shape ``(n, n_actions)``;
        disallowed actions get 0."""
        rows = context_rows(contexts)
        mask = check_allowed(allowed, len(rows), self.n_actions)
        probs = np.zeros((len(rows), self.n_actions))
        if mask is None:
            pmfs = [self._predict([shared_line(row), *self._action_lines]) for row in rows]
            if rows:
                probs[:] = self._checked(pmfs, self.n_actions)
            return with_min_share(probs, np.ones(probs.shape, dtype=bool), self.min_share)
        for i, row in enumerate(rows):
            actions = np.flatnonzero(mask[i])
            pmf = self._predict([shared_line(row), *(self._action_lines[a] for a in actions)])
            probs[i, actions] = self._checked([pmf], len(actions))[0]
        return with_min_share(probs, mask, self.min_share)

    @staticmethod
    def _checked(pmfs: list[list[float]], width: int) -> np.ndarray:
        """VW's pmfs (n rows of ``width`` floats) as float64 rows renormalised to sum to 1."""
        try:
            values = np.array(pmfs, dtype=np.float64)
        except (TypeError, ValueError):  # ragged or not numbers
            values = np.zeros((0,))
        if values.ndim != 2 or values.shape[1] != width or not np.all(np.isfinite(values)) \
                or np.any(values.sum(axis=1) <= 0):
            raise PolicyError(
                f"options.vw_args: VW returned no valid pmf (first: {pmfs[0]!r}); is it an explore learner?"
            )
        return values / values.sum(axis=1, keepdims=True)

    def _learn(self, contexts: Contexts, feedback: Feedback, weights: np.ndarray | None,
               times: np.ndarray | None) -> None:
        """Learn each logged row: cost = -reward on the chosen action, with its logged propensity.

        With ``allowed`` (the mask at decision time) each example holds exactly the actions the
        decision saw, as VW expects; without it, every action is present. ``weights`` other than 1 are
        refused (a VW label is one whole trial); ``times`` are checked and ignored.
        """
        trial_weights = added_rows(feedback, weights, times).new_weights
        if np.any(trial_weights != 1):
            raise PolicyError(
                "weights: the VW policy learns whole trials only (weight 1), found "
                f"{float(trial_weights[trial_weights != 1][0])!r}"
            )
        costs = reward_to_cost(feedback.rewards)
        everything = range(self.n_actions)
        for i, row in enumerate(context_rows(contexts)):
            chosen = int(feedback.actions[i])
            present = everything if feedback.allowed is None else np.flatnonzero(feedback.allowed[i])
            label = labelled(self._action_lines[chosen], float(costs[i]), float(feedback.propensities[i]))
            lines = [shared_line(row), *(label if a == chosen else self._action_lines[a] for a in present)]
            examples = self._workspace.parse(lines)
            try:
                self._workspace.learn(examples)
            finally:
                self._workspace.finish_example(examples)

    def model_bytes(self) -> bytes:
        """VW's own model file (with its learning state), as bytes."""
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "model.vw"
            self._workspace.save(str(path))
            return path.read_bytes()

    def to_bytes(self) -> bytes:
        return encode_snapshot(self.tag, {
            "n_actions": self.n_actions, "vw_args": self.vw_args, "seed": self.seed,
            "action_features": self.action_features, "model": self.model_bytes(),
            "min_share": self.min_share,
        })

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> VWContextualBandit:
        return cls(state["n_actions"], vw_args=state["vw_args"], action_features=state["action_features"],
                   seed=state["seed"], min_share=state.get("min_share", 0.0),  # older snapshots: no floor
                   _model=state["model"])
