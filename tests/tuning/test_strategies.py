"""Grid, random and Bayesian search behind the `Strategy` protocol."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence

import pytest

from cairn.tuning.base import Observation, Strategy
from cairn.tuning.space import Assignment, Goal, Parameter, SearchSpace
from cairn.tuning.strategies import (
    BayesianOptimization,
    GridSearch,
    RandomSearch,
    strategy_for,
)

SMALL = SearchSpace(
    (
        Parameter("n", "INTEGER", low=1, high=3),
        Parameter("kind", "CATEGORICAL", values=("a", "b")),
    )
)

MIXED = SearchSpace(
    (
        Parameter("x", "DOUBLE", low=-1.0, high=2.0),
        Parameter("lr", "DOUBLE", low=1e-4, high=1.0, scale="LOG"),
        Parameter("momentum", "DOUBLE", low=0.5, high=0.999, scale="REVERSE_LOG"),
        Parameter("layers", "INTEGER", low=1, high=6),
        Parameter("units", "INTEGER", low=8, high=512, scale="LOG"),
        Parameter("act", "CATEGORICAL", values=("relu", "tanh", "elu")),
        Parameter("dropout", "DISCRETE", values=(0.0, 0.1, 0.25, 0.5)),
    )
)


def conditional(alpha: dict[str, object]) -> SearchSpace:
    return SearchSpace.from_study_config(
        {
            "parameters": [
                {
                    "parameter": "model",
                    "type": "CATEGORICAL",
                    "categoricalValueSpec": {"values": ["linear", "tree"]},
                    "childParameterSpecs": [
                        {
                            "parameter": "alpha",
                            **alpha,
                            "parentCategoricalValues": {"values": ["linear"]},
                        },
                        {
                            "parameter": "depth",
                            "type": "INTEGER",
                            "integerValueSpec": {"minValue": "1", "maxValue": "4"},
                            "parentCategoricalValues": {"values": ["tree"]},
                        },
                    ],
                },
                {
                    "parameter": "seed_size",
                    "type": "DISCRETE",
                    "discreteValueSpec": {"values": [1, 2]},
                },
            ]
        }
    )


CONDITIONAL = conditional(
    {
        "type": "DOUBLE",
        "doubleValueSpec": {"minValue": 1e-4, "maxValue": 1.0},
        "scaleType": "UNIT_LOG_SCALE",
    }
)
CONDITIONAL_GRID = conditional({"type": "DISCRETE", "discreteValueSpec": {"values": [0.1, 1]}})


def key(assignment: Assignment) -> tuple[tuple[str, object], ...]:
    return tuple(sorted(assignment.items()))


def drive(
    strategy: Strategy,
    space: SearchSpace,
    goal: Goal,
    objective: Callable[[Assignment], float | None],
    trials: int,
    seed: int,
) -> list[Observation]:
    history: list[Observation] = []
    while len(history) < trials:
        (assignment,) = strategy.suggest(space, goal, history, [], 1, seed * 1000 + len(history))
        assert space.contains(assignment), assignment
        history.append(Observation(assignment, objective(assignment)))
    return history


# --- strategy_for ----------------------------------------------------------------------------


def test_strategy_for_maps_every_algorithm_name() -> None:
    for name in (None, "ALGORITHM_UNSPECIFIED", "GAUSSIAN_PROCESS_BANDIT"):
        assert isinstance(strategy_for(name), BayesianOptimization)
    assert isinstance(strategy_for("GRID_SEARCH"), GridSearch)
    assert isinstance(strategy_for("RANDOM_SEARCH"), RandomSearch)
    with pytest.raises(ValueError, match="SIMULATED_ANNEALING"):
        strategy_for("SIMULATED_ANNEALING")


# --- grid ------------------------------------------------------------------------------------


def test_grid_walks_the_grid_in_order_skipping_completed_and_pending() -> None:
    grid = list(SMALL.grid())
    assert len(grid) == 6
    completed = [Observation(grid[0], 1.0), Observation(grid[2], None)]
    pending = [grid[3]]
    found = GridSearch().suggest(SMALL, "MAXIMIZE", completed, pending, 2, 0)
    assert found == [grid[1], grid[4]]
    # Asked for more than is left: only what is left, and then nothing.
    rest = GridSearch().suggest(SMALL, "MAXIMIZE", completed, [*pending, *found], 10, 0)
    assert rest == [grid[5]]
    everything = [Observation(a, 0.0) for a in grid]
    assert GridSearch().suggest(SMALL, "MAXIMIZE", everything, [], 3, 0) == []
    assert GridSearch().suggest(SMALL, "MAXIMIZE", [], [], 0, 0) == []


def test_grid_never_repeats_itself_in_one_batch_or_across_calls() -> None:
    seen: list[Assignment] = []
    while batch := GridSearch().suggest(SMALL, "MINIMIZE", [], seen, 4, 0):
        seen += batch
    assert len(seen) == 6 and len({key(a) for a in seen}) == 6


def test_grid_covers_a_conditional_space_with_only_active_parameters() -> None:
    found = GridSearch().suggest(CONDITIONAL_GRID, "MAXIMIZE", [], [], 100, 0)
    # (linear × 2 alphas + tree × 4 depths) × 2 sizes, children only under their parent
    assert len(found) == 12 and found == list(CONDITIONAL_GRID.grid())
    assert all(CONDITIONAL_GRID.contains(a) for a in found)
    assert {"model": "linear", "alpha": 0.1, "seed_size": 1.0} in found
    assert {"model": "tree", "depth": 4, "seed_size": 2.0} in found
    assert len({key(a) for a in found}) == 12


def test_grid_refuses_a_double() -> None:
    with pytest.raises(ValueError, match="DOUBLE"):
        GridSearch().suggest(MIXED, "MAXIMIZE", [], [], 1, 0)


# --- random ----------------------------------------------------------------------------------


def test_random_is_deterministic_for_a_seed() -> None:
    first = RandomSearch().suggest(MIXED, "MAXIMIZE", [], [], 5, 42)
    assert first == RandomSearch().suggest(MIXED, "MAXIMIZE", [], [], 5, 42)
    assert first != RandomSearch().suggest(MIXED, "MAXIMIZE", [], [], 5, 43)


def test_random_draws_uniformly_in_each_scale_and_kind() -> None:
    draws = RandomSearch().suggest(MIXED, "MAXIMIZE", [], [], 4000, 7)
    assert len(draws) == 4000 and all(MIXED.contains(a) for a in draws)
    assert all(isinstance(a["layers"], int) and isinstance(a["units"], int) for a in draws)
    assert all(isinstance(a["dropout"], float) and isinstance(a["act"], str) for a in draws)

    def column(name: str) -> list[float]:
        return [float(a[name]) for a in draws]

    # LINEAR: mean in the middle. LOG: uniform in log10 (-4..0), so its median is near 1e-2.
    assert statistics.mean(column("x")) == pytest.approx(0.5, abs=0.06)
    assert statistics.median(math.log10(v) for v in column("lr")) == pytest.approx(-2, abs=0.15)
    # REVERSE_LOG: LOG mirrored, dense near the top: 1.499 - geometric mean (0.7067) ≈ 0.792.
    assert statistics.median(column("momentum")) == pytest.approx(0.792, abs=0.02)
    assert statistics.mean(column("momentum")) > 0.7495  # above the range's middle
    # INTEGER LINEAR: each value about as often; INTEGER LOG: uniform in log2 (3..9).
    counts = [column("layers").count(v) for v in range(1, 7)]
    assert min(counts) > 4000 / 6 * 0.8 and max(counts) < 4000 / 6 * 1.2
    assert statistics.median(math.log2(v) for v in column("units")) == pytest.approx(6, abs=0.3)
    for name, values in (("act", ("relu", "tanh", "elu")), ("dropout", (0.0, 0.1, 0.25, 0.5))):
        counts = [sum(a[name] == v for a in draws) for v in values]
        assert min(counts) > 4000 / len(values) * 0.85, (name, counts)


def test_random_avoids_repeats_in_a_finite_space_until_exhausted() -> None:
    grid = list(SMALL.grid())
    completed = [Observation(grid[0], 1.0)]
    pending = [grid[1], grid[2]]
    found = RandomSearch().suggest(SMALL, "MAXIMIZE", completed, pending, 10, 3)
    assert sorted(map(key, found)) == sorted(map(key, grid[3:]))
    assert RandomSearch().suggest(SMALL, "MAXIMIZE", completed, [*pending, *found], 2, 3) == []


def test_random_respects_conditions() -> None:
    draws = RandomSearch().suggest(CONDITIONAL, "MAXIMIZE", [], [], 200, 1)
    assert all(CONDITIONAL.contains(a) for a in draws)
    assert {a["model"] for a in draws} == {"linear", "tree"}
    assert all(("alpha" in a) == (a["model"] == "linear") for a in draws)


# --- Bayesian --------------------------------------------------------------------------------


def sharp_bowl(a: Assignment) -> float:
    # A narrow valley off-centre in a 3-D box: random search rarely lands near it.
    return sum((float(a[n]) - c) ** 2 for n, c in (("u", 0.23), ("v", 0.71), ("w", 0.42)))


BOWL = SearchSpace(tuple(Parameter(n, "DOUBLE", low=0.0, high=1.0) for n in "uvw"))


def best(history: Sequence[Observation]) -> float:
    return min(o.value for o in history if o.value is not None)


def test_bayesian_beats_random_on_a_small_problem() -> None:
    # Over 3 seeds, the mean log10 of the best value after 15 trials: Bayesian -2.9, random
    # -1.4 (measured; every one of 6 seeds had Bayesian ahead by 0.8 or more). The margin
    # asked for is one decade.
    bayes, rand = [], []
    for seed in range(3):
        bayes.append(
            math.log10(best(drive(BayesianOptimization(), BOWL, "MINIMIZE", sharp_bowl, 15, seed)))
        )
        rand.append(math.log10(best(drive(RandomSearch(), BOWL, "MINIMIZE", sharp_bowl, 15, seed))))
    assert statistics.mean(bayes) < statistics.mean(rand) - 1, (bayes, rand)


def test_bayesian_is_deterministic_for_a_history_and_seed() -> None:
    history = drive(BayesianOptimization(), MIXED, "MAXIMIZE", lambda a: float(a["x"]), 6, 0)
    first = BayesianOptimization().suggest(MIXED, "MAXIMIZE", history, [], 2, 11)
    assert first == BayesianOptimization().suggest(MIXED, "MAXIMIZE", history, [], 2, 11)
    early = BayesianOptimization().suggest(MIXED, "MAXIMIZE", history[:1], [], 2, 5)
    assert early == BayesianOptimization().suggest(MIXED, "MAXIMIZE", history[:1], [], 2, 5)


def test_bayesian_spreads_a_batch_and_avoids_pending_points() -> None:
    history = drive(BayesianOptimization(), BOWL, "MINIMIZE", sharp_bowl, 8, 1)
    pending = BayesianOptimization().suggest(BOWL, "MINIMIZE", history, [], 2, 2)
    batch = BayesianOptimization().suggest(BOWL, "MINIMIZE", history, pending, 4, 3)
    assert len(batch) == 4 and all(BOWL.contains(a) for a in batch)
    points = [*pending, *batch]
    assert len({key(a) for a in points}) == 6
    # Not all on one spot: some pair of suggestions lies apart.
    spread = max(max(abs(float(a[n]) - float(b[n])) for n in "uvw") for a in points for b in points)
    assert spread > 0.01, points


def test_bayesian_learns_from_infeasible_trials() -> None:
    # Below 0.5 every trial failed; the best feasible one is at 0.8.
    space = SearchSpace((Parameter("x", "DOUBLE", low=0.0, high=1.0),))
    completed = [Observation({"x": x}, None) for x in (0.02, 0.1, 0.18, 0.26, 0.34, 0.42)]
    completed += [Observation({"x": x}, -((x - 0.8) ** 2)) for x in (0.55, 0.65, 0.95)]
    found = BayesianOptimization().suggest(space, "MAXIMIZE", completed, [], 3, 0)
    assert len(found) == 3 and all(space.contains(a) for a in found)
    assert all(float(a["x"]) > 0.5 for a in found), found
    # Nothing feasible yet: still a valid suggestion, away from the failures.
    failed = [Observation({"x": x}, None) for x in (0.1, 0.2, 0.3)]
    (alone,) = BayesianOptimization().suggest(space, "MINIMIZE", failed, [], 1, 0)
    assert space.contains(alone) and float(alone["x"]) > 0.4


def test_bayesian_gives_only_active_parameters_in_a_conditional_space() -> None:
    def objective(a: Assignment) -> float:
        if a["model"] == "linear":
            return -abs(math.log10(float(a["alpha"])) + 2)
        return -abs(int(a["depth"]) - 3) - 0.5

    history = drive(BayesianOptimization(), CONDITIONAL, "MAXIMIZE", objective, 12, 0)
    found = BayesianOptimization().suggest(CONDITIONAL, "MAXIMIZE", history, [], 3, 99)
    for assignment in [o.parameters for o in history] + found:
        assert CONDITIONAL.contains(assignment), assignment
    assert {o.parameters["model"] for o in history} == {"linear", "tree"}


def test_bayesian_covers_a_mixed_space_and_exhausts_a_finite_one() -> None:
    history = drive(
        BayesianOptimization(), MIXED, "MINIMIZE", lambda a: abs(float(a["x"]) - 0.3), 8, 4
    )
    batch = BayesianOptimization().suggest(MIXED, "MINIMIZE", history, [], 3, 9)
    assert len(batch) == 3 and all(MIXED.contains(a) for a in batch)
    # A finite space: never a repeat, and nothing once every assignment was tried.
    history = drive(BayesianOptimization(), SMALL, "MAXIMIZE", lambda a: float(a["n"]), 6, 0)
    assert len({key(o.parameters) for o in history}) == 6
    assert BayesianOptimization().suggest(SMALL, "MAXIMIZE", history, [], 2, 0) == []
    grid = list(SMALL.grid())
    tried = [Observation(a, float(a["n"])) for a in grid[:3]]
    rest = BayesianOptimization().suggest(SMALL, "MAXIMIZE", tried, grid[3:5], 4, 0)
    assert rest == [grid[5]]


def test_bayesian_falls_back_to_random_when_the_model_fails(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object, **kwargs: object) -> list[Assignment]:
        raise RuntimeError("cholesky failed")

    monkeypatch.setattr(BayesianOptimization, "_model_based", broken)
    history = [Observation({"n": n, "kind": "a"}, float(n)) for n in (1, 2, 3)]
    found = BayesianOptimization().suggest(SMALL, "MAXIMIZE", history, [], 5, 0)
    assert sorted(map(key, found)) == sorted(key({"n": n, "kind": "b"}) for n in (1, 2, 3))
    assert "suggesting at random" in caplog.text


def test_bayesian_starts_at_the_centre_and_spreads_its_first_batch() -> None:
    batch = BayesianOptimization().suggest(BOWL, "MINIMIZE", [], [], 4, 0)
    assert batch[0] == {"u": 0.5, "v": 0.5, "w": 0.5}
    assert len({key(a) for a in batch}) == 4 and all(BOWL.contains(a) for a in batch)
    # The design stays off the edges: the middle 60 % of each range.
    assert all(0.2 <= float(a[n]) <= 0.8 for a in batch for n in "uvw")


def test_bayesian_searches_near_the_trials_while_it_knows_little() -> None:
    # The trust region: with n trials, within 0.1 + 0.01·n of one of them (max-norm).
    for seed in range(3):
        history = drive(BayesianOptimization(), BOWL, "MINIMIZE", sharp_bowl, 4, seed)
        (nxt,) = BayesianOptimization().suggest(BOWL, "MINIMIZE", history, [], 1, seed)
        nearest = min(
            max(abs(float(nxt[n]) - float(o.parameters[n])) for n in "uvw") for o in history
        )
        assert nearest <= 0.14 + 1e-9, (nxt, history)
