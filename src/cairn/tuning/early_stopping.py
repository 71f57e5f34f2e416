"""Automated early stopping: the median stopping rule of Google Vizier.

Golovin et al., "Google Vizier: A Service for Black-Box Optimization" (KDD 2017), §3.2.2: a
pending trial is stopped at step s when its best objective value by step s is strictly worse
than the median of the running averages, up to step s, of the completed trials' objectives.

`should_stop(goal, curve, others)` answers exactly this, deterministically (no randomness, and
the order of `others` or of the measurements within a curve does not matter):

1. Measurements whose value is NaN or infinite are ignored everywhere.
2. The running trial is judged only once it has at least `min_measurements` (default 2)
   measurements: a single early point says too little about where a curve is going.
3. s is the running trial's latest step; its best value is the highest (MAXIMIZE) or lowest
   (MINIMIZE) of all its measurements so far.
4. A completed trial is comparable when it reported at least one measurement at a step ≤ s;
   its running average is the mean of those measurements (all of them with a step ≤ s, so a
   trial that finished before step s counts with its whole curve).
5. With fewer than `min_others` (default 3) comparable completed trials it never stops.
6. Otherwise it stops iff its best value is strictly worse than the median (the mean of the
   two middle ones for an even count) of the comparable trials' running averages: below it
   when maximising, above it when minimising. A tie never stops a trial.

Steps are whatever the caller measures progress in (training steps, or elapsed seconds for
Vizier's `useElapsedTime`); they only need to be comparable across trials.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from cairn.tuning.space import Goal

__all__ = ["should_stop"]


def should_stop(
    goal: Goal,
    curve: Sequence[tuple[int, float]],
    others: Sequence[Sequence[tuple[int, float]]],
    *,
    min_others: int = 3,
    min_measurements: int = 2,
) -> bool:
    """Whether the running trial with measurements `curve` ((step, value) pairs) should stop,
    given the curves of the completed trials in `others` (see the module docstring)."""
    mine = _clean(curve)
    if not mine or len(mine) < min_measurements:
        return False
    step = max(s for s, _ in mine)
    values = [v for _, v in mine]
    best = max(values) if goal == "MAXIMIZE" else min(values)
    averages = []
    for other in others:
        upto = [v for s, v in _clean(other) if s <= step]
        if upto:
            averages.append(math.fsum(upto) / len(upto))
    if len(averages) < max(min_others, 1):
        return False
    median = statistics.median(averages)
    return best < median if goal == "MAXIMIZE" else best > median


def _clean(curve: Sequence[tuple[int, float]]) -> list[tuple[int, float]]:
    return [
        (step, float(value))
        for step, value in curve
        if not (math.isnan(float(value)) or math.isinf(float(value)))
    ]
