"""What every search strategy answers, and what it is told.

Strategies are stateless: each call gets the whole history (completed and infeasible trials,
and the assignments of trials still running), so a study survives a restart with nothing
but its trials stored, and a strategy never needs to remember what it suggested.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from cairn.tuning.space import Assignment, Goal, SearchSpace


@dataclass(frozen=True)
class Observation:
    """A finished trial: its parameters and objective (None: infeasible, i.e. the trainer
    failed or reported nothing for these parameters)."""

    parameters: Assignment
    value: float | None


class Strategy(Protocol):
    def suggest(
        self,
        space: SearchSpace,
        goal: Goal,
        completed: Sequence[Observation],
        pending: Sequence[Assignment],
        count: int,
        seed: int,
    ) -> list[Assignment]:
        """Up to `count` new assignments, none equal to a completed or pending one where the
        space is finite; fewer (possibly none) when a finite space is exhausted.

        `seed` makes the answer reproducible: the same history and seed give the same
        assignments. Callers pass a seed derived from the study and its trial count.
        """
        ...
