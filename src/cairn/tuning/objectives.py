"""Several metrics at once: scalarising them for a strategy, and the Pareto front.

Strategies optimise one number. A study with several metrics is searched ParEGO-style
(Knowles, 2006): each suggestion draws its own weight vector, uniformly from the simplex
and seeded, and the strategy optimises the augmented Chebyshev scalarisation of the
normalised metrics under those weights. Over many suggestions the weights sweep the whole
front, where a fixed weighted sum would only ever find its convex part.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from cairn.tuning.base import Observation
from cairn.tuning.space import Assignment, Goal

# ParEGO's ρ: the small linear term that breaks ties between points the min term rates equal.
AUGMENTATION = 0.05


def random_weights(seed: int, count: int) -> list[float]:
    """A point drawn uniformly from the (count-1)-simplex (normalised exponentials)."""
    rng = random.Random(seed)
    draws = [rng.expovariate(1.0) for _ in range(count)]
    total = sum(draws)
    return [draw / total for draw in draws]


def chebyshev_observations(
    rows: Sequence[tuple[Assignment, Sequence[float] | None]],
    goals: Sequence[Goal],
    weights: Sequence[float],
) -> list[Observation]:
    """Finished trials as single-objective observations to MAXIMIZE.

    `rows` pair each trial's parameters with its metric values (None: infeasible). Each metric
    is rescaled to [0, 1] over the feasible trials, 1 being best under its goal, so metrics of
    any units weigh alike; the score is min_i(w_i·u_i) + ρ·Σ_i w_i·u_i.
    """
    feasible = [values for _, values in rows if values is not None]
    spans: list[tuple[float, float]] = []
    for index in range(len(goals)):
        column = [values[index] for values in feasible]
        spans.append((min(column), max(column)) if column else (0.0, 0.0))
    observations: list[Observation] = []
    for parameters, values in rows:
        if values is None:
            observations.append(Observation(parameters, None))
            continue
        utilities = [
            _utility(value, low, high, goal)
            for value, (low, high), goal in zip(values, spans, goals, strict=True)
        ]
        weighted = [w * u for w, u in zip(weights, utilities, strict=True)]
        observations.append(Observation(parameters, min(weighted) + AUGMENTATION * sum(weighted)))
    return observations


def _utility(value: float, low: float, high: float, goal: Goal) -> float:
    if high == low:
        return 0.5  # every trial scored alike: the metric tells them apart nowhere
    share = (value - low) / (high - low)
    return share if goal == "MAXIMIZE" else 1.0 - share


def pareto_front(points: Sequence[Sequence[float]], goals: Sequence[Goal]) -> list[int]:
    """Indices of the points no other point dominates, in their given order.

    A point dominates another when it is at least as good on every metric (under its goal)
    and better on one. For one metric this is every point holding the best value.
    """
    oriented = [
        tuple(v if goal == "MAXIMIZE" else -v for v, goal in zip(point, goals, strict=True))
        for point in points
    ]
    # In descending lexicographic order nothing later dominates anything earlier, so each
    # point needs comparing with the front found so far only: O(n · front) not O(n²).
    order = sorted(range(len(points)), key=lambda i: oriented[i], reverse=True)
    front: list[int] = []
    for index in order:
        candidate = oriented[index]
        if not any(_dominates(oriented[kept], candidate) for kept in front):
            front.append(index)
    return sorted(front)


def _dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    return all(x >= y for x, y in zip(a, b, strict=True)) and any(
        x > y for x, y in zip(a, b, strict=True)
    )
