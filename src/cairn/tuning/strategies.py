"""Search strategies behind the `Strategy` protocol: grid, random, and Bayesian optimisation.

`strategy_for(algorithm)` maps AI Platform's `hyperparameters.algorithm` (and a Vizier study's)
to one of them; the Bayesian one is the default.

Bayesian optimisation (DRAFT: the design notes are filled in once measured).
"""

from __future__ import annotations

import contextlib
import logging
import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from cairn.tuning.base import Observation, Strategy
from cairn.tuning.space import Assignment, Goal, Parameter, SearchSpace, Value, finite

__all__ = ["BayesianOptimization", "GridSearch", "RandomSearch", "strategy_for"]

_BAYESIAN = (None, "ALGORITHM_UNSPECIFIED", "GAUSSIAN_PROCESS_BANDIT")
_Key = tuple[tuple[str, Value], ...]


def strategy_for(algorithm: str | None) -> Strategy:
    """The strategy for an AI Platform / Vizier algorithm name; unknown names: ValueError."""
    if algorithm in _BAYESIAN:
        return BayesianOptimization()
    if algorithm == "GRID_SEARCH":
        return GridSearch()
    if algorithm == "RANDOM_SEARCH":
        return RandomSearch()
    raise ValueError(
        f"Unknown search algorithm {algorithm!r}: use GAUSSIAN_PROCESS_BANDIT, GRID_SEARCH "
        "or RANDOM_SEARCH."
    )


# --- shared helpers ------------------------------------------------------------------------


def _key(assignment: Mapping[str, Value]) -> _Key:
    # 3 and 3.0 hash alike, so an INTEGER stored as a float still matches.
    return tuple(sorted(assignment.items()))


def _seen(completed: Sequence[Observation], pending: Sequence[Assignment]) -> set[_Key]:
    return {_key(o.parameters) for o in completed} | {_key(a) for a in pending}


def _is_finite_space(space: SearchSpace) -> bool:
    return all(p.kind != "DOUBLE" for p in space.parameters)


def _scaled_bounds(parameter: Parameter) -> tuple[float, float, bool]:
    """The range a unit coordinate spans, and whether it spans it in log space. An INTEGER's
    range is widened by half a step each side so that rounding gives each integer its share."""
    assert parameter.low is not None and parameter.high is not None
    low, high = parameter.low, parameter.high
    if parameter.kind == "INTEGER":
        low, high = low - 0.5, high + 0.5
    logarithmic = parameter.scale != "LINEAR" and low > 0
    if logarithmic:
        return math.log(low), math.log(high), True
    return low, high, False


def _from_unit(parameter: Parameter, u: float) -> Value:
    """The value at unit coordinate `u` in [0, 1]: uniform in the parameter's scale. LOG is
    log-uniform; REVERSE_LOG is the mirror image of LOG (dense near the high end)."""
    if parameter.kind in ("CATEGORICAL", "DISCRETE"):
        return parameter.values[min(int(u * len(parameter.values)), len(parameter.values) - 1)]
    assert parameter.low is not None and parameter.high is not None
    low, high, logarithmic = _scaled_bounds(parameter)
    if parameter.scale == "REVERSE_LOG" and logarithmic:
        u = 1.0 - u
    x = low + u * (high - low)
    if logarithmic:
        x = math.exp(x)
        if parameter.scale == "REVERSE_LOG":
            x = math.exp(low) + math.exp(high) - x
    if parameter.kind == "INTEGER":
        return int(min(max(round(x), parameter.low), parameter.high))
    return float(min(max(x, parameter.low), parameter.high))


def _to_unit(parameter: Parameter, value: Value) -> float:
    """The inverse of `_from_unit` (for CATEGORICAL and DISCRETE: the middle of the value's
    cell)."""
    if parameter.kind in ("CATEGORICAL", "DISCRETE"):
        return (_index_of(parameter, value) + 0.5) / len(parameter.values)
    low, high, logarithmic = _scaled_bounds(parameter)
    if high == low:
        return 0.5
    x = float(value)
    if logarithmic:
        if parameter.scale == "REVERSE_LOG":
            x = math.exp(low) + math.exp(high) - x
        x = math.log(max(x, math.exp(low)))
    u = (x - low) / (high - low)
    if parameter.scale == "REVERSE_LOG" and logarithmic:
        u = 1.0 - u
    return min(max(u, 0.0), 1.0)


def _index_of(parameter: Parameter, value: Value) -> int:
    if value in parameter.values:
        return parameter.values.index(value)
    if parameter.kind == "DISCRETE":  # a stored float that lost a last digit
        return int(np.argmin([abs(float(v) - float(value)) for v in parameter.values]))
    raise ValueError(f"{value!r} is not one of {parameter.name}'s values.")


def _sample(space: SearchSpace, rng: np.random.Generator) -> Assignment:
    """One assignment drawn uniformly in every active parameter's scale, parents first."""
    assignment: Assignment = {}
    for parameter in space.parameters:
        if parameter.is_active(assignment):
            assignment[parameter.name] = _from_unit(parameter, float(rng.random()))
    return assignment


def _unseen(
    space: SearchSpace, seen: set[_Key], rng: np.random.Generator, *, tries: int = 64
) -> Assignment | None:
    """A random assignment not in `seen`; None when a finite space has no other left."""
    candidate = _sample(space, rng)
    if not _is_finite_space(space):
        return candidate  # a DOUBLE makes an exact repeat practically impossible
    for _ in range(tries):
        if _key(candidate) not in seen:
            return candidate
        candidate = _sample(space, rng)
    # Rejection keeps failing: the space is (nearly) exhausted, so it is small enough to list.
    remaining = [a for a in space.grid() if _key(a) not in seen]
    if not remaining:
        return None
    return remaining[int(rng.integers(len(remaining)))]


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed % 2**32)


# --- grid and random -----------------------------------------------------------------------


class GridSearch:
    """Every combination in `space.grid()` order, skipping those already tried or running."""

    def suggest(
        self,
        space: SearchSpace,
        goal: Goal,
        completed: Sequence[Observation],
        pending: Sequence[Assignment],
        count: int,
        seed: int,
    ) -> list[Assignment]:
        seen = _seen(completed, pending)
        found: list[Assignment] = []
        if count <= 0:
            return found
        for assignment in space.grid():
            key = _key(assignment)
            if key in seen:
                continue
            seen.add(key)
            found.append(assignment)
            if len(found) == count:
                break
        return found


class RandomSearch:
    """Independent draws, uniform in each parameter's scale (see `_from_unit`)."""

    def suggest(
        self,
        space: SearchSpace,
        goal: Goal,
        completed: Sequence[Observation],
        pending: Sequence[Assignment],
        count: int,
        seed: int,
    ) -> list[Assignment]:
        rng = _rng(seed)
        seen = _seen(completed, pending)
        found: list[Assignment] = []
        for _ in range(max(count, 0)):
            assignment = _unseen(space, seen, rng)
            if assignment is None:
                break
            seen.add(_key(assignment))
            found.append(assignment)
        return found


# --- Bayesian optimisation -----------------------------------------------------------------

# Optuna logs at INFO when a study is created and warns when the acquisition search converges
# early (routine here); neither belongs in a server's log.
logging.getLogger("optuna._gp.optim_mixed").setLevel(logging.ERROR)


@contextlib.contextmanager
def _quiet_single_threaded() -> Iterator[None]:
    import optuna
    import torch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    threads = torch.get_num_threads()
    # Dozens of tiny tensor operations per call: threads only add contention.
    torch.set_num_threads(1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        torch.set_num_threads(threads)


@dataclass(frozen=True)
class BayesianOptimization:
    """Gaussian-process Bayesian optimisation on Optuna's GPSampler (see the module notes)."""

    startup: int = 3
    center_first: bool = True
    warp: float = 0.0
    deterministic: bool = False
    preliminary_samples: int = 2048
    local_searches: int = 10
    pending_mode: Literal["qei", "liar"] = "qei"

    def suggest(
        self,
        space: SearchSpace,
        goal: Goal,
        completed: Sequence[Observation],
        pending: Sequence[Assignment],
        count: int,
        seed: int,
    ) -> list[Assignment]:
        if count <= 0 or not space.parameters:
            return []
        rng = _rng(seed)
        seen = _seen(completed, pending)
        usable = [o for o in completed if space.contains(o.parameters)]
        feasible = [o for o in usable if o.value is not None and finite(o.value)]
        found: list[Assignment] = []
        if len(feasible) < max(self.startup, 1):
            # Too little to model: spread the first points out instead.
            placed = [o.parameters for o in completed] + list(pending)
            while len(found) < count and len(feasible) + len(found) < max(self.startup, 1):
                assignment = self._space_filling(space, placed + found, seen, rng)
                if assignment is None:
                    return found
                seen.add(_key(assignment))
                found.append(assignment)
            if len(found) == count:
                return found
        with _quiet_single_threaded():
            found += self._model_based(
                space, goal, usable, list(pending) + found, count - len(found), seed, seen, rng
            )
        return found

    def _space_filling(
        self,
        space: SearchSpace,
        placed: Sequence[Mapping[str, Value]],
        seen: set[_Key],
        rng: np.random.Generator,
    ) -> Assignment | None:
        if not placed and self.center_first:
            center: Assignment = {}
            for parameter in space.parameters:
                if parameter.is_active(center):
                    center[parameter.name] = _from_unit(parameter, 0.5)
            return center
        # The best of a random pool by distance to its nearest placed point (maximin).
        best: tuple[float, Assignment] | None = None
        for _ in range(256):
            candidate = _unseen(space, seen, rng)
            if candidate is None:
                return None
            distance = min((_distance(space, candidate, p) for p in placed), default=0.0)
            if best is None or distance > best[0]:
                best = (distance, candidate)
        return best[1] if best is not None else None

    def _model_based(
        self,
        space: SearchSpace,
        goal: Goal,
        usable: Sequence[Observation],
        pending: Sequence[Assignment],
        count: int,
        seed: int,
        seen: set[_Key],
        rng: np.random.Generator,
    ) -> list[Assignment]:
        import optuna
        from optuna.trial import TrialState, create_trial

        distributions = {p.name: _distribution(p) for p in space.parameters}
        scores = _scores(goal, [o.value for o in usable], self.warp)
        sampler = _Sampler(self, seed % 2**32)
        study = optuna.create_study(direction="maximize", sampler=sampler)

        def internal(assignment: Mapping[str, Value]) -> tuple[dict[str, Any], dict[str, Any]]:
            params = {n: _internal(space[n], v) for n, v in assignment.items()}
            return params, {n: distributions[n] for n in assignment}

        for observation, score in zip(usable, scores, strict=True):
            params, dists = internal(observation.parameters)
            study.add_trial(create_trial(params=params, distributions=dists, value=score))
        lie = float(np.min(scores)) if len(scores) else 0.0
        for assignment in pending:
            if not space.contains(assignment):
                continue
            params, dists = internal(assignment)
            if self.pending_mode == "liar":
                study.add_trial(create_trial(params=params, distributions=dists, value=lie))
            else:
                study.add_trial(
                    create_trial(state=TrialState.RUNNING, params=params, distributions=dists)
                )
        found: list[Assignment] = []
        for _ in range(count):
            trial = study.ask()
            assignment: Assignment = {}
            for parameter in space.parameters:
                if parameter.is_active(assignment):
                    raw = _suggest(trial, parameter.name, distributions[parameter.name])
                    assignment[parameter.name] = _external(parameter, raw)
            if _key(assignment) in seen:
                # The model insists on a point already tried: take a fresh one instead, and
                # tell the study about the one that will actually run.
                study.tell(trial, state=TrialState.FAIL)
                replacement = _unseen(space, seen, rng)
                if replacement is None:
                    break
                assignment = replacement
                params, dists = internal(assignment)
                study.add_trial(
                    create_trial(state=TrialState.RUNNING, params=params, distributions=dists)
                )
            elif self.pending_mode == "liar":
                study.tell(trial, lie)
            seen.add(_key(assignment))
            found.append(assignment)
        return found


def _distance(space: SearchSpace, a: Mapping[str, Value], b: Mapping[str, Value]) -> float:
    total = 0.0
    for parameter in space.parameters:
        if parameter.name not in a or parameter.name not in b:
            continue
        if parameter.kind == "CATEGORICAL":
            total += 0.0 if a[parameter.name] == b[parameter.name] else 1.0
        else:
            total += (
                _to_unit(parameter, a[parameter.name]) - _to_unit(parameter, b[parameter.name])
            ) ** 2
    return math.sqrt(total)


def _scores(goal: Goal, values: Sequence[float | None], warp: float) -> list[float]:
    """What the model is fitted to, higher better. An infeasible trial scores as the worst
    feasible one so the search learns to avoid its neighbourhood."""
    sign = 1.0 if goal == "MAXIMIZE" else -1.0
    known = [sign * v for v in values if v is not None and finite(v)]
    worst = min(known) if known else 0.0
    y = np.array([sign * v if v is not None and finite(v) else worst for v in values], float)
    if warp > 0 and len(y) and y.max() > y.min():
        # Stretch differences near the best and squash the far tail (log of the gap to the
        # best), which a stationary GP fits better than the raw heavy-tailed values.
        gap = (y.max() - y) / (y.max() - y.min())
        y = -np.log1p(warp * gap)
    return [float(v) for v in y]


def _distribution(parameter: Parameter) -> Any:
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if parameter.kind == "CATEGORICAL":
        return CategoricalDistribution(parameter.values)
    if parameter.kind == "DISCRETE":
        # Modelled by position: discrete lists are usually spaced the way the user thinks of
        # them (1, 2, 4, 8 or 0.1, 0.3, 1), which raw distances would distort.
        return IntDistribution(0, len(parameter.values) - 1)
    assert parameter.low is not None and parameter.high is not None
    logarithmic = parameter.scale != "LINEAR" and parameter.low > 0
    if parameter.kind == "INTEGER":
        return IntDistribution(int(parameter.low), int(parameter.high), log=logarithmic)
    return FloatDistribution(parameter.low, parameter.high, log=logarithmic)


def _reflected(parameter: Parameter) -> bool:
    # REVERSE_LOG is LOG on the mirrored value low + high - x.
    return parameter.scale == "REVERSE_LOG" and parameter.low is not None and parameter.low > 0


def _internal(parameter: Parameter, value: Value) -> Any:
    if parameter.kind == "DISCRETE":
        return _index_of(parameter, value)
    if parameter.kind == "CATEGORICAL":
        return value
    assert parameter.low is not None and parameter.high is not None
    x = float(value)
    if _reflected(parameter):
        x = min(max(parameter.low + parameter.high - x, parameter.low), parameter.high)
    return int(round(x)) if parameter.kind == "INTEGER" else x


def _external(parameter: Parameter, raw: Any) -> Value:
    if parameter.kind == "DISCRETE":
        return parameter.values[int(raw)]
    if parameter.kind == "CATEGORICAL":
        return str(raw)
    assert parameter.low is not None and parameter.high is not None
    x = float(raw)
    if _reflected(parameter):
        x = min(max(parameter.low + parameter.high - x, parameter.low), parameter.high)
    return int(round(x)) if parameter.kind == "INTEGER" else x


def _suggest(trial: Any, name: str, distribution: Any) -> Any:
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    if isinstance(distribution, CategoricalDistribution):
        return trial.suggest_categorical(name, distribution.choices)
    if isinstance(distribution, FloatDistribution):
        return trial.suggest_float(name, distribution.low, distribution.high, log=distribution.log)
    return trial.suggest_int(name, distribution.low, distribution.high, log=distribution.log)


def _Sampler(config: BayesianOptimization, seed: int) -> Any:
    from optuna.samplers import GPSampler, RandomSampler

    sampler = GPSampler(
        seed=seed,
        independent_sampler=RandomSampler(seed=seed),
        n_startup_trials=1,
        deterministic_objective=config.deterministic,
        warn_independent_sampling=False,
    )
    # Acquisition-search effort (private knobs of Optuna 5's GPSampler; pinned below 6).
    sampler._n_preliminary_samples = config.preliminary_samples
    sampler._n_local_search = config.local_searches
    return sampler
