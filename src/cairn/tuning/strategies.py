"""Search strategies behind the `Strategy` protocol: grid, random, and Bayesian optimisation.

`strategy_for(algorithm)` maps AI Platform's `hyperparameters.algorithm` (and a Vizier study's)
to one of them; Bayesian optimisation is the default.

Grid: `space.grid()` in order, skipping what was tried or is running. Random: each parameter
uniform in its scale (see `_from_unit`), no exact repeats in a finite space.

Bayesian optimisation (`BayesianOptimization`) is stateless like every strategy: each call
rebuilds an in-memory Optuna study from the history and asks Optuna 5's GPSampler (Matern-5/2
ARD Gaussian process, log expected improvement; q-batch log EI while trials are running).
Cairn's additions, each chosen by measurement with benchmarks/tuning_quality.py on its tuning
problems only (Branin, Hartmann-6, a 7-parameter mixed space, XGBoost on diabetes; 10 seeds;
median normalised regret pooled over the four, after 20 / 50 sequential trials; Optuna's GP
with default settings: 0.19 / 0.040, its TPE: 0.18 / 0.058):

- A short start: the centre of the space, then two points, each the most isolated (maximin)
  of 32 random points from the middle 60 % of every scale; the GP takes over from the fourth
  trial (Optuna's default: the eleventh). Maximin over 256 candidates on the full ranges went
  to corners (0.23 / 0.041 without a trust region); an unscrambled Sobol design, the same for
  every study, left Hartmann-6 in one local optimum on every seed (0.058 against 0.002 at 50);
  two start points instead of three: 0.13 / 0.055 against 0.10 / 0.024.
- A trust region: the acquisition is maximised only within an L-infinity distance
  0.1 + 0.01·n (unit coordinates, continuous parameters) of one of the n trials so far, so a
  model fitted to a handful of points does not send the next trial to a corner. Random points
  in that union of balls pick the most promising ball, and Optuna's optimiser searches it as a
  box. Final design: 0.13 / 0.012 (4 in parallel: 0.15 / 0.046, Optuna's GP 0.27 / 0.056,
  TPE 0.21 / 0.074). A penalty outside the union did as well (0.10 / 0.024) but took 190 ms a
  suggestion on Hartmann-6 against 45 ms (41 ms without a trust region); searching the best
  two balls gained nothing (0.13 / 0.019).
- Pending trials join the study as RUNNING trials, so the sampler's q-batch expected
  improvement spreads a batch instead of piling it on one point.
- Infeasible trials (value None, NaN or infinite) score as the worst feasible value seen, so
  the model learns to avoid their neighbourhood.
- Tried and left out: a log warping of the objective (0.22 / 0.14), rank-warping the worse
  half of the values (no gain), a noise-free GP (better on the synthetic functions, worse on
  XGBoost: 0.148 against 0.099 at 50; real objectives are noisy), half the acquisition-search
  effort (no clear change in regret, 15 % faster).

Parameters map onto Optuna distributions as: DOUBLE and INTEGER with their LOG scale,
REVERSE_LOG as LOG of the mirrored value low + high - x, DISCRETE by position in its list,
CATEGORICAL as categorical. Conditional parameters are asked parents first (define-by-run):
the GP models the parameters every trial has, and the others are drawn at random. A
suggestion that repeats a tried assignment (small discrete spaces) is replaced by a random
unseen one. The same history and seed give the same suggestions: the sampler is seeded from
`seed`, torch runs on one thread, and nothing is remembered between calls.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cairn.tuning.base import Observation, Strategy
from cairn.tuning.space import Assignment, Goal, Parameter, SearchSpace, Value, finite

__all__ = ["BayesianOptimization", "GridSearch", "RandomSearch", "strategy_for"]

log = logging.getLogger(__name__)

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

# Optuna warns when the acquisition search converges early and when a kernel fit restarts from
# its defaults: routine here, and not for a server's log.
for _name in ("optuna._gp.optim_mixed", "optuna._gp.gp"):
    logging.getLogger(_name).setLevel(logging.ERROR)


@dataclass(frozen=True)
class BayesianOptimization:
    """Gaussian-process Bayesian optimisation on Optuna's GPSampler (see the module notes).

    The fields are the design's knobs; the defaults are the measured choice.
    """

    # Feasible trials before the model takes over; until then, a space-filling design.
    startup: int = 3
    # Design points (after the centre) are the most isolated of `pool` random candidates
    # drawn from the middle of each scale, [margin, 1 - margin] in unit coordinates.
    pool: int = 32
    margin: float = 0.2
    # The acquisition is searched within an L-infinity distance a + b·n (unit coordinates)
    # of the n trials so far; None searches everywhere.
    trust_radius: tuple[float, float] | None = (0.1, 0.01)
    # Acquisition-search effort: random starts scored, and local searches from the best.
    preliminary_samples: int = 2048
    local_searches: int = 10

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
        feasible = sum(1 for o in usable if o.value is not None and finite(o.value))
        found: list[Assignment] = []
        # Until there is something to model (and with nothing feasible at all, the model would
        # learn nothing), the points come from the design.
        design = max(self.startup, 1) - feasible if feasible else count
        placed = [o.parameters for o in completed] + list(pending)
        while len(found) < min(count, design):
            assignment = self._design_point(space, placed + found, seen, rng)
            if assignment is None:
                return found  # a finite space, exhausted
            seen.add(_key(assignment))
            found.append(assignment)
        if len(found) < count:
            try:
                with _quiet_single_threaded():
                    found += self._model_based(
                        space, goal, usable, [*pending, *found], count - len(found), seed, seen, rng
                    )
            except Exception:  # a numerical failure must not stall the study
                log.exception("Bayesian optimisation failed; suggesting at random instead.")
                while len(found) < count and (assignment := _unseen(space, seen, rng)):
                    seen.add(_key(assignment))
                    found.append(assignment)
        return found

    def _design_point(
        self,
        space: SearchSpace,
        placed: Sequence[Mapping[str, Value]],
        seen: set[_Key],
        rng: np.random.Generator,
    ) -> Assignment | None:
        """The centre first (the middle of every scale: often a sensible default), then the
        most isolated of a pool of random points away from the edges (maximin). The pool is
        small and kept off the edges because maximin over many candidates in several
        dimensions picks corners, where optima rarely are."""
        if not placed:
            centre: Assignment = {}
            for parameter in space.parameters:
                if parameter.is_active(centre):
                    centre[parameter.name] = _from_unit(parameter, 0.5)
            if _key(centre) not in seen:
                return centre
        best: tuple[float, Assignment] | None = None
        for _ in range(self.pool):
            candidate: Assignment = {}
            for parameter in space.parameters:
                if parameter.is_active(candidate):
                    u = self.margin + (1 - 2 * self.margin) * float(rng.random())
                    candidate[parameter.name] = _from_unit(parameter, u)
            if _key(candidate) in seen:
                continue
            distance = min((_distance(space, candidate, p) for p in placed), default=0.0)
            if best is None or distance > best[0]:
                best = (distance, candidate)
        return best[1] if best is not None else _unseen(space, seen, rng)

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
        """Rebuild an in-memory Optuna study from the history and ask it `count` times; the
        pending trials (and each suggestion, once made) are RUNNING trials, which the GP
        sampler's q-batch expected improvement accounts for."""
        import optuna
        from optuna.trial import TrialState, create_trial

        distributions = {p.name: _distribution(p) for p in space.parameters}

        def frozen(
            assignment: Mapping[str, Value], value: float | None = None
        ) -> optuna.trial.FrozenTrial:
            params = {n: _internal(space[n], v) for n, v in assignment.items()}
            state = TrialState.RUNNING if value is None else TrialState.COMPLETE
            dists = {n: distributions[n] for n in assignment}
            return create_trial(state=state, params=params, distributions=dists, value=value)

        study = optuna.create_study(direction="maximize", sampler=_sampler(self, seed))
        scores = _scores(goal, [o.value for o in usable])
        study.add_trials([frozen(o.parameters, s) for o, s in zip(usable, scores, strict=True)])
        study.add_trials([frozen(a) for a in pending if space.contains(a)])
        found: list[Assignment] = []
        for _ in range(count):
            trial = study.ask()
            suggestion: Assignment = {}
            for parameter in space.parameters:  # parents before children: define-by-run
                if parameter.is_active(suggestion):
                    raw = _suggest(trial, parameter.name, distributions[parameter.name])
                    suggestion[parameter.name] = _external(parameter, raw)
            if _key(suggestion) in seen:
                # The model insists on a point already tried (a small discrete space): take a
                # fresh one, and let the study know which point is really running.
                study.tell(trial, state=TrialState.FAIL)
                replacement = _unseen(space, seen, rng)
                if replacement is None:
                    break
                suggestion = replacement
                study.add_trial(frozen(suggestion))
            seen.add(_key(suggestion))
            found.append(suggestion)
        return found


@contextlib.contextmanager
def _quiet_single_threaded() -> Iterator[None]:
    import optuna
    import torch

    # Optuna logs every study it creates at INFO.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    threads = torch.get_num_threads()
    # Many small tensor operations: more threads only add contention (Optuna does the same
    # around its acquisition search, not around the kernel fit).
    torch.set_num_threads(1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        torch.set_num_threads(threads)


def _distance(space: SearchSpace, a: Mapping[str, Value], b: Mapping[str, Value]) -> float:
    """Euclidean in unit coordinates over the parameters both have; a categorical mismatch
    counts 1."""
    total = 0.0
    for parameter in space.parameters:
        if parameter.name not in a or parameter.name not in b:
            continue
        if parameter.kind == "CATEGORICAL":
            total += 0.0 if a[parameter.name] == b[parameter.name] else 1.0
        else:
            gap = _to_unit(parameter, a[parameter.name]) - _to_unit(parameter, b[parameter.name])
            total += gap * gap
    return math.sqrt(total)


def _scores(goal: Goal, values: Sequence[float | None]) -> list[float]:
    """What the model is fitted to, higher better. An infeasible trial scores as the worst
    feasible one, so the search learns to avoid its neighbourhood."""
    sign = 1.0 if goal == "MAXIMIZE" else -1.0
    known = [sign * v for v in values if v is not None and finite(v)]
    worst = min(known) if known else 0.0
    return [sign * v if v is not None and finite(v) else worst for v in values]


def _distribution(parameter: Parameter) -> Any:
    """The Optuna distribution a parameter is modelled in."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if parameter.kind == "CATEGORICAL":
        return CategoricalDistribution(parameter.values)
    if parameter.kind == "DISCRETE":
        # By position: discrete lists are usually spaced the way their user thinks of them
        # (1, 2, 4, 8 or 0.1, 0.3, 1), which raw distances would distort.
        return IntDistribution(0, len(parameter.values) - 1)
    assert parameter.low is not None and parameter.high is not None
    logarithmic = parameter.scale != "LINEAR" and parameter.low > 0
    if parameter.kind == "INTEGER":
        return IntDistribution(int(parameter.low), int(parameter.high), log=logarithmic)
    return FloatDistribution(parameter.low, parameter.high, log=logarithmic)


def _reflected(parameter: Parameter) -> bool:
    # REVERSE_LOG is modelled as LOG of the mirrored value low + high - x.
    return parameter.scale == "REVERSE_LOG" and parameter.low is not None and parameter.low > 0


def _internal(parameter: Parameter, value: Value) -> Any:
    """A value as its Optuna distribution holds it."""
    if parameter.kind == "DISCRETE":
        return _index_of(parameter, value)
    if parameter.kind == "CATEGORICAL":
        return value
    return _mirror(parameter, float(value))


def _external(parameter: Parameter, raw: Any) -> Value:
    """The inverse of `_internal`."""
    if parameter.kind == "DISCRETE":
        return parameter.values[int(raw)]
    if parameter.kind == "CATEGORICAL":
        return str(raw)
    return _mirror(parameter, float(raw))


def _mirror(parameter: Parameter, x: float) -> float | int:
    assert parameter.low is not None and parameter.high is not None
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


def _sampler(config: BayesianOptimization, seed: int) -> Any:
    sampler = _sampler_class()(
        seed=seed % 2**32,
        n_startup_trials=1,  # the design already ran
        warn_independent_sampling=False,  # conditional children are sampled independently
    )
    sampler.trust_radius = config.trust_radius
    # Acquisition-search effort: private knobs of Optuna 5's GPSampler (pinned below 6).
    sampler._n_preliminary_samples = config.preliminary_samples
    # Room for the two warm starts a trust-region search may pass, plus one random start.
    sampler._n_local_search = max(config.local_searches, 3)
    return sampler


@functools.cache
def _sampler_class() -> type[Any]:
    """GPSampler with the acquisition searched within a trust region. Built on first use so
    that importing this module does not import torch."""
    import torch
    from optuna._gp.acqf import BaseAcquisitionFunc
    from optuna.samplers import GPSampler
    from optuna.trial import TrialState

    class Boxed(BaseAcquisitionFunc):
        """An acquisition function seen through the affine map of the unit cube onto the box
        low + [0, 1]·width, so that Optuna's optimiser searches only that box."""

        def __init__(self, inner: Any, low: np.ndarray, width: np.ndarray) -> None:
            self.inner = inner
            self.low = torch.from_numpy(low)
            self.width = torch.from_numpy(width)
            # Optuna preconditions its gradient steps by the length scales, which the map
            # shrinks along with the box.
            super().__init__(inner.length_scales / width, inner.search_space)

        def eval_acqf(self, x: torch.Tensor) -> torch.Tensor:
            value: torch.Tensor = self.inner.eval_acqf(self.low + x * self.width)
            return value

    class TrustRegionGPSampler(GPSampler):
        trust_radius: tuple[float, float] | None = None
        _completed: list[Any] = []

        def sample_relative(self, study: Any, trial: Any, search_space: Any) -> Any:
            self._completed = study._get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            return super().sample_relative(study, trial, search_space)

        def _optimize_acqf(self, acqf: Any, best_params: Any) -> Any:
            """Search the trust region: the union of L-infinity balls of the current radius
            around the trials (continuous parameters). Random points in the union pick the
            most promising ball; Optuna's optimiser then searches that ball as a box (a
            penalty outside the union, tried first, made its local searches four times as
            long)."""
            space = acqf.search_space
            continuous = space.continuous_indices
            n = len(self._completed)
            if self.trust_radius is None or n == 0 or len(continuous) == 0:
                return super()._optimize_acqf(acqf, best_params)
            radius = self.trust_radius[0] + self.trust_radius[1] * n
            if radius >= 1.0:
                return super()._optimize_acqf(acqf, best_params)
            anchors = space.get_normalized_params(self._completed)[:, continuous]
            lows = np.clip(anchors - radius, 0.0, 1.0)
            widths = np.clip(anchors + radius, 0.0, 1.0) - lows
            rng = self._rng.rng
            candidates = space.sample_normalized_params(self._n_preliminary_samples // 2, rng)
            ball = rng.randint(n, size=len(candidates))
            candidates[:, continuous] = lows[ball] + candidates[:, continuous] * widths[ball]
            best = int(np.argmax(acqf.eval_acqf_no_grad(candidates)))
            box_low, box_width = lows[ball[best]], widths[ball[best]]
            starts = [candidates[best]]
            for params in best_params if best_params is not None else []:
                gaps = np.abs(params[continuous] - box_low - box_width / 2)
                if np.all(gaps <= box_width / 2):  # the incumbent, when in that ball
                    starts.append(params)
            inside = np.array(starts)
            inside[:, continuous] = (inside[:, continuous] - box_low) / box_width
            low, width = np.zeros(space.dim), np.ones(space.dim)
            low[continuous], width[continuous] = box_low, box_width
            found = np.array(super()._optimize_acqf(Boxed(acqf, low, width), inside))
            found[continuous] = box_low + found[continuous] * box_width
            return found

    return TrustRegionGPSampler
