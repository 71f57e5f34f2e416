"""The median stopping rule: both directions, too few others, and the edges it documents."""

from __future__ import annotations

import math
import random

from cairn.tuning.early_stopping import should_stop

# Three completed trials (MAXIMIZE-style accuracy curves). Running averages up to step 2:
# 0.55, 0.65 and 0.75, so the median is 0.65.
OTHERS = [
    [(1, 0.5), (2, 0.6), (3, 0.9)],
    [(1, 0.6), (2, 0.7), (3, 0.9)],
    [(1, 0.7), (2, 0.8), (3, 0.9)],
]


def mirrored(curves: list[list[tuple[int, float]]]) -> list[list[tuple[int, float]]]:
    return [[(s, -v) for s, v in c] for c in curves]


def test_maximize_stops_a_trial_whose_best_is_below_the_median() -> None:
    assert should_stop("MAXIMIZE", [(1, 0.3), (2, 0.64)], OTHERS)


def test_maximize_keeps_a_trial_at_or_above_the_median() -> None:
    assert not should_stop("MAXIMIZE", [(1, 0.3), (2, 0.66)], OTHERS)
    # A tie is not strictly worse.
    assert not should_stop("MAXIMIZE", [(1, 0.3), (2, 0.65)], OTHERS)
    # The best value so far counts, not the latest one.
    assert not should_stop("MAXIMIZE", [(1, 0.7), (2, 0.1)], OTHERS)


def test_minimize_is_the_mirror_image() -> None:
    others = mirrored(OTHERS)  # running averages -0.55, -0.65, -0.75: median -0.65
    assert should_stop("MINIMIZE", [(1, -0.3), (2, -0.64)], others)
    assert not should_stop("MINIMIZE", [(1, -0.3), (2, -0.66)], others)
    assert not should_stop("MINIMIZE", [(1, -0.7), (2, -0.1)], others)


def test_never_with_fewer_than_min_others_comparable_trials() -> None:
    hopeless = [(1, -100.0), (2, -100.0)]
    assert not should_stop("MAXIMIZE", hopeless, OTHERS[:2])
    assert not should_stop("MAXIMIZE", hopeless, [])
    assert should_stop("MAXIMIZE", hopeless, OTHERS[:2], min_others=2)
    # A completed trial whose first measurement comes after the latest step is not comparable.
    late = [(5, 0.9), (6, 0.95)]
    assert not should_stop("MAXIMIZE", hopeless, [*OTHERS[:2], late])


def test_only_judges_after_min_measurements() -> None:
    assert not should_stop("MAXIMIZE", [(1, 0.0)], OTHERS)
    assert should_stop("MAXIMIZE", [(1, 0.0)], OTHERS, min_measurements=1)
    assert not should_stop("MAXIMIZE", [], OTHERS, min_measurements=0)


def test_running_averages_stop_at_the_trials_latest_step() -> None:
    # At step 1 the others average 0.5, 0.6, 0.7 (median 0.6); their later 0.9s do not count.
    assert not should_stop("MAXIMIZE", [(0, 0.1), (1, 0.61)], OTHERS)
    assert should_stop("MAXIMIZE", [(0, 0.1), (1, 0.59)], OTHERS)
    # Past their last step, the others count with their whole curves: averages 2/3, 0.7333,
    # 0.8; median 0.7333.
    assert should_stop("MAXIMIZE", [(9, 0.5), (10, 0.73)], OTHERS)
    assert not should_stop("MAXIMIZE", [(9, 0.5), (10, 0.74)], OTHERS)


def test_an_even_count_uses_the_mean_of_the_middle_two() -> None:
    others = [*OTHERS, [(1, 0.8), (2, 0.8)]]  # averages 0.55, 0.65, 0.75, 0.8: median 0.7
    assert should_stop("MAXIMIZE", [(1, 0.0), (2, 0.69)], others)
    assert not should_stop("MAXIMIZE", [(1, 0.0), (2, 0.71)], others)


def test_non_finite_values_are_ignored_and_the_answer_is_order_independent() -> None:
    noisy = [[*c, (2, math.nan)] for c in OTHERS]
    assert should_stop("MAXIMIZE", [(1, 0.3), (2, 0.64), (2, math.inf)], noisy)
    assert not should_stop("MAXIMIZE", [(1, math.nan), (2, 0.64)], noisy)  # one measurement
    shuffled = [list(reversed(c)) for c in reversed(OTHERS)]
    rng = random.Random(0)
    for _ in range(5):
        rng.shuffle(shuffled)
        assert should_stop("MAXIMIZE", [(2, 0.64), (1, 0.3)], shuffled)
