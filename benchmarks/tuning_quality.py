"""Hyperparameter-tuning quality: Cairn's Bayesian optimisation against random search and
Optuna's TPE and GP samplers (default settings), all through one harness.

Problems. Tuning set (the only problems the Bayesian design was tuned on): Branin (2-D),
Hartmann-6, a mixed space with all four parameter types and all three scales ("mixed-7",
a shifted quadratic with a categorical interaction; optimum 0), and a 3-fold cross-validated
XGBoost regressor on scikit-learn's diabetes data ("xgb-diabetes", 6 parameters, RMSE).
Held out (reported separately, never used for design decisions): Styblinski-Tang in 5-D and an
RBF SVM (C and gamma on log scales, 3-fold accuracy, maximised) on 500 of scikit-learn's digits.

Protocol. Each (contender, problem, seed) runs 50 trials twice: sequentially (one suggestion,
then its result), and in parallel (batches of 4 suggested with the earlier ones of the batch
pending, then all 4 told; Optuna contenders leave them RUNNING). The 20-trial figures are the
prefix of the 50-trial runs. Cairn and random search are called through the `Strategy`
interface with the whole history each time, exactly as the server calls them; Optuna contenders
keep one study per run and use ask/tell. All contenders see the same parameter encoding
(DISCRETE by position, REVERSE_LOG as mirrored LOG) so that only the search differs.

Normalised regret of a run after n trials = (best value found − optimum) / (median value of
uniformly random points − optimum), signs flipped for maximised problems: 0 is the optimum,
1 is no better than a typical random point. The optimum is known for the synthetic functions;
for the two real problems it is the best value ever seen in any run of this benchmark (or
among the random reference points). The random reference is 20 000 points (synthetic) or 200
points (real), with a fixed seed, uniform in each parameter's scale.

Figures: median normalised regret over the runs in a cell, with a bootstrap 95 % confidence
interval (2 000 resamples of the runs), per group and per problem; and the time each
contender takes per suggestion in the 50-trial runs (median and 95th percentile).
Results go to benchmarks/results/tuning_quality.md and are printed.

    nice -n 10 .venv/bin/python benchmarks/tuning_quality.py           # the full run
    nice -n 10 .venv/bin/python benchmarks/tuning_quality.py --quick   # 3 seeds, not written

Run by hand only; tests never run it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from cairn.tuning.base import Observation, Strategy
from cairn.tuning.space import Assignment, Goal, Parameter, SearchSpace
from cairn.tuning.strategies import (
    BayesianOptimization,
    RandomSearch,
    _distribution,
    _external,
    _key,
    _sample,
    _suggest,
)

RESULTS = Path(__file__).parent / "results" / "tuning_quality.md"
BUDGETS = (20, 50)
MODES = ("sequential", "parallel")
BATCH = 4
CONTENDERS = ("cairn", "random", "optuna-tpe", "optuna-gp")


# --- problems ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    name: str
    group: str  # "tuning" or "held-out"
    space: SearchSpace
    goal: Goal
    evaluate: Callable[[Assignment], float]
    optimum: float | None  # None: a real problem, the best value ever seen stands in
    random_points: int = 20_000

    def better(self, a: float, b: float) -> bool:
        return a > b if self.goal == "MAXIMIZE" else a < b


def _double(name: str, low: float, high: float, scale: str = "LINEAR") -> Parameter:
    return Parameter(name, "DOUBLE", low=low, high=high, scale=scale)  # type: ignore[arg-type]


def branin(a: Assignment) -> float:
    x1, x2 = float(a["x1"]), float(a["x2"])
    b, c = 5.1 / (4 * math.pi**2), 5 / math.pi
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10


_H_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_H_A = np.array(
    [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8]]
    + [[17, 8, 0.05, 10, 0.1, 14]]
)
_H_P = 1e-4 * np.array(
    [[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991]]
    + [[2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]]
)


def hartmann6(a: Assignment) -> float:
    x = np.array([float(a[f"x{i}"]) for i in range(6)])
    return float(-np.sum(_H_ALPHA * np.exp(-np.sum(_H_A * (x - _H_P) ** 2, axis=1))))


def styblinski_tang(a: Assignment) -> float:
    x = np.array([float(a[f"x{i}"]) for i in range(5)])
    return float(0.5 * np.sum(x**4 - 16 * x**2 + 5 * x))


_ACTIVATIONS = {"relu": (0.0, 1.5), "tanh": (0.3, -1.0), "sigmoid": (1.0, 3.0), "elu": (0.1, 0.5)}


def mixed(a: Assignment) -> float:
    """0 at activation=relu, x=1.5, lr=10^-2.5, momentum=0.98, layers=5, units=128, dropout=0.2;
    the best x depends on the activation (an interaction a model has to learn)."""
    offset, best_x = _ACTIVATIONS[str(a["activation"])]
    return (
        offset
        + 0.25 * (float(a["x"]) - best_x) ** 2
        + ((math.log10(float(a["lr"])) + 2.5) / 1.5) ** 2
        + (math.log10(1 - float(a["momentum"])) - math.log10(0.02)) ** 2
        + 0.1 * (int(a["layers"]) - 5) ** 2
        + 0.25 * (math.log2(int(a["units"])) - 7) ** 2
        + 10 * (float(a["dropout"]) - 0.2) ** 2
    )


@cache
def _diabetes() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True)
    return np.asarray(x), np.asarray(y)


def xgb_diabetes(a: Assignment) -> float:
    import xgboost
    from sklearn.model_selection import KFold, cross_val_score

    x, y = _diabetes()
    model = xgboost.XGBRegressor(
        n_estimators=30,
        learning_rate=float(a["learning_rate"]),
        max_depth=int(a["max_depth"]),
        min_child_weight=float(a["min_child_weight"]),
        subsample=float(a["subsample"]),
        colsample_bytree=float(a["colsample_bytree"]),
        reg_lambda=float(a["reg_lambda"]),
        tree_method="hist",
        max_bin=64,
        n_jobs=1,
        random_state=0,
    )
    folds = KFold(3, shuffle=True, random_state=0)
    scores = cross_val_score(model, x, y, cv=folds, scoring="neg_root_mean_squared_error")
    return float(-scores.mean())


@cache
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    rows = np.random.default_rng(0).choice(len(x), 500, replace=False)
    return np.asarray(x)[rows] / 16.0, np.asarray(y)[rows]


def svm_digits(a: Assignment) -> float:
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.svm import SVC

    x, y = _digits()
    folds = StratifiedKFold(3, shuffle=True, random_state=0)
    model = SVC(C=float(a["C"]), gamma=float(a["gamma"]))
    return float(cross_val_score(model, x, y, cv=folds).mean())


PROBLEMS: dict[str, Problem] = {
    p.name: p
    for p in (
        Problem(
            "branin",
            "tuning",
            SearchSpace((_double("x1", -5, 10), _double("x2", 0, 15))),
            "MINIMIZE",
            branin,
            0.397887357729739,
        ),
        Problem(
            "hartmann6",
            "tuning",
            SearchSpace(tuple(_double(f"x{i}", 0, 1) for i in range(6))),
            "MINIMIZE",
            hartmann6,
            -3.322368011415515,
        ),
        Problem(
            "mixed-7",
            "tuning",
            SearchSpace(
                (
                    _double("x", -5, 5),
                    _double("lr", 1e-5, 1, "LOG"),
                    _double("momentum", 0.5, 0.999, "REVERSE_LOG"),
                    Parameter("layers", "INTEGER", low=1, high=8),
                    Parameter("units", "INTEGER", low=8, high=512, scale="LOG"),
                    Parameter("activation", "CATEGORICAL", values=tuple(_ACTIVATIONS)),
                    Parameter("dropout", "DISCRETE", values=(0.0, 0.1, 0.2, 0.3, 0.5)),
                )
            ),
            "MINIMIZE",
            mixed,
            0.0,
        ),
        Problem(
            "xgb-diabetes",
            "tuning",
            SearchSpace(
                (
                    _double("learning_rate", 0.01, 1.0, "LOG"),
                    Parameter("max_depth", "INTEGER", low=1, high=6),
                    _double("min_child_weight", 0.1, 100, "LOG"),
                    _double("subsample", 0.3, 1.0),
                    _double("colsample_bytree", 0.3, 1.0),
                    _double("reg_lambda", 1e-3, 100, "LOG"),
                )
            ),
            "MINIMIZE",
            xgb_diabetes,
            None,
            random_points=200,
        ),
        Problem(
            "styblinski-tang5",
            "held-out",
            SearchSpace(tuple(_double(f"x{i}", -5, 5) for i in range(5))),
            "MINIMIZE",
            styblinski_tang,
            -39.16616570377142 * 5,
        ),
        Problem(
            "svm-digits",
            "held-out",
            SearchSpace((_double("C", 1e-2, 1e3, "LOG"), _double("gamma", 1e-5, 1.0, "LOG"))),
            "MAXIMIZE",
            svm_digits,
            None,
            random_points=200,
        ),
    )
}


class Memo:
    """Real problems are deterministic: a repeated assignment costs nothing the second time."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.values: dict[Any, float] = {}

    def __call__(self, assignment: Assignment) -> float:
        key = _key(assignment)
        if key not in self.values:
            self.values[key] = self.problem.evaluate(assignment)
        return self.values[key]


def random_reference(problem: Problem) -> list[float]:
    rng = np.random.default_rng(12345)
    return [problem.evaluate(_sample(problem.space, rng)) for _ in range(problem.random_points)]


# --- contenders ----------------------------------------------------------------------------


@dataclass
class Run:
    values: list[float] = field(default_factory=list)  # in the order results came back
    seconds: list[float] = field(default_factory=list)  # per suggestion


def run_strategy(strategy: Strategy, problem: Problem, seed: int, mode: str, budget: int) -> Run:
    """As the server drives a strategy: the whole history each call, a seed per call."""
    evaluate, run = Memo(problem), Run()
    history: list[Observation] = []
    while len(history) < budget:
        count = 1 if mode == "sequential" else min(BATCH, budget - len(history))
        start = time.perf_counter()
        batch = strategy.suggest(
            problem.space, problem.goal, history, [], count, seed * 100_003 + len(history)
        )
        elapsed = time.perf_counter() - start
        assert len(batch) == count and all(problem.space.contains(a) for a in batch), batch
        run.seconds += [elapsed / count] * count
        for assignment in batch:
            value = evaluate(assignment)
            history.append(Observation(assignment, value))
            run.values.append(value)
    return run


def run_optuna(sampler_name: str, problem: Problem, seed: int, mode: str, budget: int) -> Run:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler: optuna.samplers.BaseSampler = (
        optuna.samplers.TPESampler(seed=seed)
        if sampler_name == "optuna-tpe"
        else optuna.samplers.GPSampler(seed=seed)
    )
    direction = (
        optuna.study.StudyDirection.MAXIMIZE
        if problem.goal == "MAXIMIZE"
        else optuna.study.StudyDirection.MINIMIZE
    )
    study = optuna.create_study(direction=direction, sampler=sampler)
    distributions = {p.name: _distribution(p) for p in problem.space.parameters}
    evaluate, run = Memo(problem), Run()
    while len(run.values) < budget:
        count = 1 if mode == "sequential" else min(BATCH, budget - len(run.values))
        asked = []
        for _ in range(count):  # the earlier ones of a batch stay RUNNING meanwhile
            start = time.perf_counter()
            trial = study.ask()
            assignment: Assignment = {}
            for parameter in problem.space.parameters:
                if parameter.is_active(assignment):
                    raw = _suggest(trial, parameter.name, distributions[parameter.name])
                    assignment[parameter.name] = _external(parameter, raw)
            run.seconds.append(time.perf_counter() - start)
            asked.append((trial, assignment))
        for trial, assignment in asked:
            value = evaluate(assignment)
            study.tell(trial, value)
            run.values.append(value)
    return run


def run_contender(contender: str, problem: Problem, seed: int, mode: str, budget: int = 50) -> Run:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna's experimental-feature notices
        if contender == "cairn":
            return run_strategy(BayesianOptimization(), problem, seed, mode, budget)
        if contender == "random":
            return run_strategy(RandomSearch(), problem, seed, mode, budget)
        return run_optuna(contender, problem, seed, mode, budget)


# --- figures -------------------------------------------------------------------------------


def best_prefix(problem: Problem, values: Sequence[float], n: int) -> float:
    return max(values[:n]) if problem.goal == "MAXIMIZE" else min(values[:n])


def normalised_regret(problem: Problem, best: float, optimum: float, median: float) -> float:
    sign = -1.0 if problem.goal == "MAXIMIZE" else 1.0
    return max(sign * (best - optimum), 0.0) / (sign * (median - optimum))


def median_ci(values: Sequence[float], seed: int = 0) -> tuple[float, float, float]:
    data = np.asarray(values, float)
    rng = np.random.default_rng(seed)
    medians = np.median(data[rng.integers(0, len(data), (2000, len(data)))], axis=1)
    low, high = np.percentile(medians, [2.5, 97.5])
    return float(np.median(data)), float(low), float(high)


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, float), q))


@dataclass
class Results:
    problems: list[Problem]
    contenders: list[str]
    seeds: int
    runs: dict[tuple[str, str, int, str], Run]
    references: dict[str, tuple[float, float]]  # problem → (optimum, random median)

    def regrets(
        self, contender: str, problems: Sequence[Problem], mode: str, n: int
    ) -> list[float]:
        found = []
        for problem in problems:
            optimum, median = self.references[problem.name]
            for seed in range(self.seeds):
                run = self.runs[(contender, problem.name, seed, mode)]
                best = best_prefix(problem, run.values, n)
                found.append(normalised_regret(problem, best, optimum, median))
        return found

    def seconds(
        self, contender: str, mode: str, problem: str | None = None, *, tail: bool = False
    ) -> list[float]:
        """Suggestion times of a contender's runs (`tail`: only trials 41-50)."""
        return [
            s
            for (c, name, _, m), run in self.runs.items()
            if c == contender and m == mode and problem in (None, name)
            for s in (run.seconds[40:] if tail else run.seconds)
        ]


def references(
    problems: Sequence[Problem], runs: dict[tuple[str, str, int, str], Run]
) -> dict[str, tuple[float, float]]:
    found = {}
    for problem in problems:
        reference = random_reference(problem)
        median = statistics.median(reference)
        if problem.optimum is not None:
            optimum = problem.optimum
        else:  # the best ever seen, in any run or among the reference points
            seen = reference + [
                v for k, r in runs.items() if k[1] == problem.name for v in r.values
            ]
            optimum = max(seen) if problem.goal == "MAXIMIZE" else min(seen)
        found[problem.name] = (optimum, median)
    return found


def _cell(values: Sequence[float]) -> str:
    median, low, high = median_ci(values)
    return f"{median:.3f} [{low:.3f}, {high:.3f}]"


def table(results: Results, header: str) -> str:
    lines = [header, ""]
    contenders = results.contenders
    groups = [
        (group, [p for p in results.problems if p.group == group])
        for group in ("tuning", "held-out")
    ]
    lines += [
        "## Median normalised regret by group [bootstrap 95 % CI]",
        "",
        "| group | trials | mode | " + " | ".join(contenders) + " |",
        "|---|---|---|" + "---|" * len(contenders),
    ]
    for group, problems in groups:
        if not problems:
            continue
        for n in BUDGETS:
            for mode in MODES:
                cells = [_cell(results.regrets(c, problems, mode, n)) for c in contenders]
                lines.append(f"| {group} | {n} | {mode} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "A group's median pools its problems' runs: with two problems of very different "
        "difficulty (as held out) it falls between the worst run of the easy one and the best "
        "run of the hard one. Steadier, the mean over a group's problems of each problem's "
        "median regret:",
        "",
        "| group | trials | mode | " + " | ".join(contenders) + " |",
        "|---|---|---|" + "---|" * len(contenders),
    ]
    for group, problems in groups:
        if not problems:
            continue
        for n in BUDGETS:
            for mode in MODES:
                means = [
                    statistics.mean(
                        statistics.median(results.regrets(c, [p], mode, n)) for p in problems
                    )
                    for c in contenders
                ]
                lines.append(
                    f"| {group} | {n} | {mode} | " + " | ".join(f"{m:.3f}" for m in means) + " |"
                )
    lines += [
        "",
        "## Median normalised regret by problem [bootstrap 95 % CI]",
        "",
        "| problem | group | trials | mode | " + " | ".join(contenders) + " |",
        "|---|---|---|---|" + "---|" * len(contenders),
    ]
    for problem in results.problems:
        for n in BUDGETS:
            for mode in MODES:
                cells = [_cell(results.regrets(c, [problem], mode, n)) for c in contenders]
                lines.append(
                    f"| {problem.name} | {problem.group} | {n} | {mode} | "
                    + " | ".join(cells)
                    + " |"
                )
    lines += [
        "",
        "## Time per suggestion in the 50-trial runs, all problems (ms)",
        "",
        "Parallel: a batch's time divided by its size for strategies asked for 4 at once.",
        "",
        "| contender | sequential median | sequential p95 | sequential median, trials 41-50 "
        "| parallel median | parallel p95 |",
        "|---|---|---|---|---|---|",
    ]
    for contender in contenders:
        seq = results.seconds(contender, "sequential")
        seq_tail = results.seconds(contender, "sequential", tail=True)
        par = results.seconds(contender, "parallel")
        lines.append(
            f"| {contender} | {1e3 * percentile(seq, 50):.1f} | {1e3 * percentile(seq, 95):.1f} | "
            f"{1e3 * percentile(seq_tail, 50):.1f} | {1e3 * percentile(par, 50):.1f} | "
            f"{1e3 * percentile(par, 95):.1f} |"
        )
    lines += [
        "",
        "Median time per suggestion by problem, sequential (ms):",
        "",
        "| problem | " + " | ".join(contenders) + " |",
        "|---|" + "---|" * len(contenders),
    ]
    for problem in results.problems:
        cells = [
            f"{1e3 * percentile(results.seconds(c, 'sequential', problem.name), 50):.1f}"
            for c in contenders
        ]
        lines.append(f"| {problem.name} | " + " | ".join(cells) + " |")
    lines += ["", "## References (optimum; median of random points)", ""]
    for problem in results.problems:
        optimum, median = results.references[problem.name]
        source = "known" if problem.optimum is not None else "best ever seen"
        lines.append(
            f"- {problem.name} ({problem.goal.lower()}): optimum {optimum:.6g} ({source}); "
            f"random median {median:.6g} over {problem.random_points} points"
        )
    return "\n".join(lines) + "\n"


# --- driver --------------------------------------------------------------------------------


def _job(args: tuple[str, str, int, str]) -> tuple[tuple[str, str, int, str], Run]:
    import torch

    torch.set_num_threads(1)
    contender, name, seed, mode = args
    return args, run_contender(contender, PROBLEMS[name], seed, mode)


def run_all(
    problems: Sequence[Problem],
    contenders: Sequence[str],
    seeds: int,
    jobs: int,
    cache_dir: Path | None = None,
) -> dict[tuple[str, str, int, str], Run]:
    keys = [
        (c, p.name, s, m) for p in problems for c in contenders for m in MODES for s in range(seeds)
    ]
    runs: dict[tuple[str, str, int, str], Run] = {}
    todo = []
    for key in keys:
        cached = cache_dir / ("_".join(map(str, key)) + ".json") if cache_dir else None
        if cached is not None and cached.exists() and key[0] != "cairn":
            data = json.loads(cached.read_text())
            runs[key] = Run(data["values"], data["seconds"])
        else:
            todo.append(key)
    started = time.perf_counter()

    def record(key: tuple[str, str, int, str], run: Run) -> None:
        runs[key] = run
        if cache_dir is not None and key[0] != "cairn":
            cache_dir.mkdir(parents=True, exist_ok=True)
            path = cache_dir / ("_".join(map(str, key)) + ".json")
            path.write_text(json.dumps({"values": run.values, "seconds": run.seconds}))
        done = len(runs)
        print(
            f"\r{done}/{len(keys)} runs, {time.perf_counter() - started:.0f} s",
            end="",
            file=sys.stderr,
            flush=True,
        )

    if jobs > 1:
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(jobs) as pool:
            for key, run in pool.imap_unordered(_job, todo):
                record(key, run)
    else:
        for key in todo:
            record(*_job(key))
    print(file=sys.stderr)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="3 seeds; results not written")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--problems", default=",".join(PROBLEMS))
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--jobs", type=int, default=1, help="processes (default 1)")
    parser.add_argument("--cache", type=Path, help="reuse other contenders' runs (development)")
    args = parser.parse_args()
    seeds = 3 if args.quick else args.seeds
    problems = [PROBLEMS[name] for name in args.problems.split(",")]
    contenders = args.contenders.split(",")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    started = time.perf_counter()
    runs = run_all(problems, contenders, seeds, args.jobs, args.cache)
    results = Results(problems, contenders, seeds, runs, references(problems, runs))
    minutes = (time.perf_counter() - started) / 60
    header = (
        "# Hyperparameter-tuning quality\n\n"
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; {args.jobs} process(es) at niceness {os.nice(0)}. "
        f"{seeds} seeds × {len(problems)} problems × 2 modes × {len(contenders)} contenders, "
        f"50 trials each; {minutes:.1f} minutes in all.\n\n"
        "Normalised regret = (best found − optimum) / (median of random points − optimum), "
        "signs flipped when maximising: 0 is the optimum, 1 a typical random point. "
        "Lower is better. See the docstring of benchmarks/tuning_quality.py for the protocol."
    )
    text = table(results, header)
    print(text)
    if not args.quick:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(text)
        print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
