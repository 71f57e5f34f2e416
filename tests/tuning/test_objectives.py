"""Several metrics: the Chebyshev scalarisation suggestions use, and the Pareto front."""

from __future__ import annotations

import pytest

from cairn.tuning.objectives import chebyshev_observations, pareto_front, random_weights


def test_random_weights_lie_on_the_simplex_and_follow_the_seed() -> None:
    weights = random_weights(7, 3)
    assert len(weights) == 3 and all(w > 0 for w in weights)
    assert sum(weights) == pytest.approx(1.0)
    assert random_weights(7, 3) == weights
    assert random_weights(8, 3) != weights


def test_chebyshev_scores_favour_what_the_weights_favour() -> None:
    rows = [({"x": 0}, [1.0, 10.0]), ({"x": 1}, [0.0, 0.0]), ({"x": 2}, None)]
    goals = ["MAXIMIZE", "MINIMIZE"]
    accuracy_first = chebyshev_observations(rows, goals, [0.99, 0.01])  # type: ignore[arg-type]
    latency_first = chebyshev_observations(rows, goals, [0.01, 0.99])  # type: ignore[arg-type]
    assert accuracy_first[0].value is not None and accuracy_first[1].value is not None
    assert latency_first[0].value is not None and latency_first[1].value is not None
    # Each trial is best on one metric and worst on the other: the weights decide.
    assert accuracy_first[0].value > accuracy_first[1].value
    assert latency_first[1].value > latency_first[0].value
    assert accuracy_first[2].value is None and accuracy_first[2].parameters == {"x": 2}


def test_a_metric_every_trial_shares_does_not_break_the_scale() -> None:
    rows = [({"x": 0}, [5.0]), ({"x": 1}, [5.0])]
    scores = chebyshev_observations(rows, ["MAXIMIZE"], [1.0])
    assert scores[0].value == scores[1].value


def test_pareto_front_keeps_the_undominated_and_ties() -> None:
    points = [[0.9, 10], [0.8, 5], [0.85, 20], [0.7, 5], [0.95, 30], [0.8, 5]]
    assert pareto_front(points, ["MAXIMIZE", "MINIMIZE"]) == [0, 1, 4, 5]
    assert pareto_front([[3.0], [1.0], [3.0]], ["MAXIMIZE"]) == [0, 2]
    assert pareto_front([[3.0], [1.0]], ["MINIMIZE"]) == [1]
    assert pareto_front([], ["MAXIMIZE"]) == []
