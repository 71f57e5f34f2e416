"""Hyperparameter tuning jobs: a study whose trials are runs of the job's whole cluster.

`TuningJobs` stands where the training runner stands for a plain job: the job service calls
its `start`, `recover` and `cancel` with the same callbacks, and keeps owning the job's
state. One controller thread per tuning job asks the search strategy for parameters, runs
each trial through the training runner (`--name=value` flags, `CLOUD_ML_TRIAL_ID`, its own
run directory), reads the trial's metrics while it runs and when it ends, stops hopeless
trials early, and writes `trainingOutput` (trials best first) into the job's document.

Durability: every trial is written to the job's document before it is launched, and the
strategies are stateless, so the document alone is the study. After a restart, trials whose
processes still run are re-adopted, trials that ended meanwhile are judged by their exit
files, and trials that never launched (or that a graceful stop interrupted) run again with
the same parameters and id; nothing is suggested twice.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from cairn.domain.errors import ApiError, failed_precondition, invalid_field
from cairn.domain.jobs import TERMINAL_STATES, TrainingInput, replica_count
from cairn.domain.wire import format_timestamp, now
from cairn.training import RunOutcome
from cairn.training.scheduling import max_running_seconds
from cairn.tuning.base import Observation
from cairn.tuning.early_stopping import should_stop
from cairn.tuning.metrics import Measurement, TrialMetricReader
from cairn.tuning.space import (
    Assignment,
    Goal,
    SearchSpace,
    format_value,
    goal_of,
    trainer_flags,
)
from cairn.tuning.strategies import strategy_for

log = logging.getLogger(__name__)

DEFAULT_METRIC_TAG = "training/hptuning/metric"
# Measurements kept per trial in `allMetrics`: cloudml-hypertune itself keeps its last 100,
# and the whole study is rewritten with every change.
MAX_MEASUREMENTS = 100
# Resumed studies chain (A <- B <- C); their history is gathered this many jobs deep.
MAX_RESUME_CHAIN = 100
# After Cairn itself failed a tuning job, how long its trials get to end before they are
# recorded as CANCELLED.
_STOP_WAIT_S = 60.0
# With maxFailedTrials 0 ("Cairn decides"), a job whose first trials all fail stops there:
# a broken trainer should not burn the whole budget.
AUTO_FAILURE_LIMIT = 3
_PATH = "job.training_input.hyperparameters"


class TrialRunner(Protocol):
    """What tuning needs of the training engine (`cairn.training.TrainingRunner`)."""

    def start(
        self,
        project: str,
        job_id: str,
        training_input: Mapping[str, Any],
        *,
        on_state: Callable[[str], None],
        on_finished: Callable[[Any], None],
        trial_id: str | None = None,
        extra_args: Sequence[str] = (),
        extra_env: Mapping[str, str] | None = None,
    ) -> None: ...

    def recover(
        self,
        project: str,
        job_id: str,
        training_input: Mapping[str, Any],
        *,
        on_state: Callable[[str], None],
        on_finished: Callable[[Any], None],
        trial_id: str | None = None,
        extra_env: Mapping[str, str] | None = None,
    ) -> bool: ...

    def cancel(self, project: str, job_id: str, trial_id: str | None = None) -> None: ...

    def release_job(self, project: str, job_id: str) -> None: ...

    def trial_metric_sources(
        self, project: str, job_id: str, training_input: Mapping[str, Any], trial_id: str
    ) -> tuple[Path, list[Path]]: ...


@dataclass
class _Running:
    reader: TrialMetricReader
    stop_requested: bool = False
    measurements: list[Measurement] = field(default_factory=list)
    since: float | None = None  # a trial run again ignores what its earlier attempt reported

    def read(self) -> list[Measurement]:
        found = self.reader.read()
        if self.since is None:
            return found
        return [m for m in found if m.time is None or m.time >= self.since]


@dataclass
class _Study:
    project: str
    job_id: str
    training_input: Mapping[str, Any]
    on_state: Callable[[str], None]
    on_finished: Callable[[Any], None]
    extra_env: Mapping[str, str]
    space: SearchSpace
    goal: Goal
    tag: str
    history: list[Observation]  # trials of the job this one resumes
    replicas: int  # per trial
    events: queue.Queue[tuple[str, str, Any]] = field(default_factory=queue.Queue)
    running: dict[str, _Running] = field(default_factory=dict)
    exhausted: bool = False
    thread: threading.Thread | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.project, self.job_id)

    @property
    def spec(self) -> Mapping[str, Any]:
        return self.training_input.get("hyperparameters") or {}


class TuningJobs:
    def __init__(self, repo: Any, runner: TrialRunner, *, poll_s: float = 0.5) -> None:
        self._repo = repo
        self._runner = runner
        self._poll_s = poll_s
        self._studies: dict[tuple[str, str], _Study] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()

    # ----- what the job service calls ---------------------------------------------------

    def check_new(self, project: str, training_input: Mapping[str, Any]) -> None:
        """Refuse at create what a tuning job could never run: a resumed study that does not
        exist, has not ended, or searched a different space."""
        spec = training_input.get("hyperparameters") or {}
        previous_id = spec.get("resumePreviousJobId")
        if not previous_id:
            return
        field_path = f"{_PATH}.resume_previous_job_id"
        previous = self._repo.get((project, previous_id))
        previous_spec = ((previous or {}).get("trainingInput") or {}).get("hyperparameters")
        if previous is None or previous_spec is None:
            raise invalid_field(
                field_path, f"Job {previous_id} is not a hyperparameter tuning job of {project}."
            )
        if previous.get("state") not in TERMINAL_STATES:
            raise failed_precondition(
                f"Job {previous_id} is still {previous.get('state')}; resume its study once it "
                "has ended."
            )
        if previous_spec.get("params") != spec.get("params") or goal_of(
            previous_spec.get("goal")
        ) != goal_of(spec.get("goal")):
            raise invalid_field(
                field_path,
                f"Job {previous_id} tuned other parameters or another goal; a resumed study "
                "needs the same params and goal.",
            )

    def start(
        self,
        project: str,
        job_id: str,
        training_input: Mapping[str, Any],
        *,
        on_state: Callable[[str], None],
        on_finished: Callable[[Any], None],
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        try:
            study = self._study(project, job_id, training_input, on_state, on_finished, extra_env)
            self._repo.update(study.key, lambda doc: self._with_output(doc, study, {}))
        except BaseException:
            self._runner.release_job(project, job_id)
            raise
        self._launch_controller(study)

    def recover(
        self,
        project: str,
        job_id: str,
        training_input: Mapping[str, Any],
        *,
        on_state: Callable[[str], None],
        on_finished: Callable[[Any], None],
        identity_env: Callable[[], Mapping[str, str]] | None = None,
    ) -> bool:
        """Take the study up again after a restart; always True (its trials are stored).

        Trials still running are re-adopted first, so they keep the job's uid; only then is
        the job's credential issued again (`identity_env`) for the trials that run anew.
        Trials the runner judges (ended while the server was down, or interrupted by a
        graceful stop) report through the controller like any other."""
        study = self._study(project, job_id, training_input, on_state, on_finished, {})
        doc = self._repo.get(study.key) or {}
        stopping = set(_internal(doc).get("stopRequested", []))
        rerun: list[str] = []
        try:
            for trial in _trials(doc):
                trial_id = str(trial["trialId"])
                if trial.get("state") in TERMINAL_STATES:
                    continue
                running = study.running[trial_id] = self._running(study, trial_id)
                running.stop_requested = trial_id in stopping
                if not self._runner.recover(
                    project,
                    job_id,
                    training_input,
                    on_state=self._state_event(study, trial_id),
                    on_finished=self._finished_event(study, trial_id),
                    trial_id=trial_id,
                ):
                    rerun.append(trial_id)  # written, never launched
                elif running.stop_requested:
                    self._runner.cancel(project, job_id, trial_id)  # asked before the crash
            study.extra_env = dict(identity_env() if identity_env is not None else {})
        except BaseException:
            self._runner.cancel(project, job_id)
            raise
        for trial_id in rerun:
            if doc.get("state") == "CANCELLING" or trial_id in stopping:
                study.events.put(("finished", trial_id, RunOutcome("CANCELLED")))
            else:
                self._run_trial(study, trial_id, _assignment(study.space, _trial(doc, trial_id)))
        self._launch_controller(study)
        return True

    def cancel(self, project: str, job_id: str) -> None:
        self._runner.cancel(project, job_id)
        with self._lock:
            study = self._studies.get((project, job_id))
        if study is not None:
            study.events.put(("cancel", "", None))  # wakes the controller at once

    def shutdown(self) -> None:
        """The server is stopping: the jobs stay RUNNING in the store and resume at the next
        start, where the trials the runner's shutdown interrupts run again. Call before the
        runner's shutdown."""
        self._closing.set()

    def join(self, timeout: float) -> None:
        with self._lock:
            threads = [s.thread for s in self._studies.values() if s.thread is not None]
        for thread in threads:
            thread.join(timeout)

    # ----- setting up -------------------------------------------------------------------

    def _study(
        self,
        project: str,
        job_id: str,
        training_input: Mapping[str, Any],
        on_state: Callable[[str], None],
        on_finished: Callable[[Any], None],
        extra_env: Mapping[str, str] | None,
    ) -> _Study:
        spec = training_input.get("hyperparameters") or {}
        space = SearchSpace.from_hyperparameter_spec(spec)
        return _Study(
            project=project,
            job_id=job_id,
            training_input=training_input,
            on_state=on_state,
            on_finished=on_finished,
            extra_env=dict(extra_env or {}),
            space=space,
            goal=goal_of(spec.get("goal")),
            tag=str(spec.get("hyperparameterMetricTag") or DEFAULT_METRIC_TAG),
            history=self._history(project, spec, space),
            replicas=replica_count(TrainingInput.parse(dict(training_input), "job.training_input")),
        )

    def _history(
        self, project: str, spec: Mapping[str, Any], space: SearchSpace
    ) -> list[Observation]:
        """The trials of the studies this one resumes, along the whole chain."""
        history: list[Observation] = []
        seen: set[str] = set()
        previous_id = spec.get("resumePreviousJobId")
        while previous_id and previous_id not in seen and len(seen) < MAX_RESUME_CHAIN:
            seen.add(previous_id)
            previous = self._repo.get((project, previous_id)) or {}
            for trial in _trials(previous):
                if (observation := _observation(space, trial)) is not None:
                    history.append(observation)
            previous_spec = (previous.get("trainingInput") or {}).get("hyperparameters") or {}
            previous_id = previous_spec.get("resumePreviousJobId")
        return history

    def _running(self, study: _Study, trial_id: str) -> _Running:
        metric_file, summary_dirs = self._runner.trial_metric_sources(
            study.project, study.job_id, study.training_input, trial_id
        )
        return _Running(TrialMetricReader(metric_file, summary_dirs, study.tag))

    def _launch_controller(self, study: _Study) -> None:
        with self._lock:
            self._studies[study.key] = study
        thread = threading.Thread(
            target=self._control, args=(study,), name=f"cairn-tuning-{study.job_id}", daemon=True
        )
        study.thread = thread
        thread.start()

    # ----- the controller ---------------------------------------------------------------

    def _control(self, study: _Study) -> None:
        outcome: RunOutcome | None = None
        try:
            outcome = self._drive(study)
        except Exception as exc:
            log.exception("tuning job %s/%s failed inside Cairn", *study.key)
            self._stop_all(study)
            outcome = RunOutcome("FAILED", f"Cairn could not run the tuning job: {exc}")
        finally:
            with self._lock:
                self._studies.pop(study.key, None)
        if outcome is None:
            return  # interrupted by a server stop: the job resumes at the next start
        try:
            self._runner.release_job(study.project, study.job_id)
        except Exception:
            log.exception("could not release the uid of job %s/%s", *study.key)
        study.on_finished(outcome)

    def _drive(self, study: _Study) -> RunOutcome | None:
        last_refresh = 0.0
        ending: RunOutcome | None = None
        deadline = max_running_seconds(study.training_input)
        while True:
            self._handle_events(study, timeout=self._poll_s)
            if self._closing.is_set():
                return None
            doc = self._repo.get(study.key) or {}
            if ending is None and doc.get("state") in ("CANCELLING", *TERMINAL_STATES):
                ending = RunOutcome("CANCELLED")
            if ending is None and _ran_longer_than(doc, deadline):
                ending = RunOutcome(
                    "FAILED",
                    f"The job ran longer than scheduling.maxRunningTime ({deadline:g}s) "
                    "and was stopped.",
                )
            if ending is None:
                ending = self._failure_limit(study, doc)
            if ending is not None:
                if not study.running:
                    return ending
                self._runner.cancel(study.project, study.job_id)
                continue
            if time.monotonic() - last_refresh > 1.0:
                last_refresh = time.monotonic()
                self._observe_running(study, doc)
            self._launch_more(study, doc)
            if not study.running and (study.exhausted or len(_trials(doc)) >= _max_trials(study)):
                return self._final_outcome(study)

    def _handle_events(self, study: _Study, timeout: float) -> None:
        try:
            event = study.events.get(timeout=timeout)
        except queue.Empty:
            return
        while True:
            kind, trial_id, payload = event
            if kind == "state":
                self._trial_state(study, trial_id, payload)
            elif kind == "finished":
                self._trial_finished(study, trial_id, payload)
            try:
                event = study.events.get_nowait()
            except queue.Empty:
                return

    def _launch_more(self, study: _Study, doc: Mapping[str, Any]) -> None:
        parallel = max(1, int(study.spec.get("maxParallelTrials") or 1))
        room = min(parallel - len(study.running), _max_trials(study) - len(_trials(doc)))
        if room <= 0 or study.exhausted:
            return
        trials = _trials(doc)
        completed = list(study.history)
        pending: list[Assignment] = []
        for trial in trials:
            if str(trial["trialId"]) in study.running:
                pending.append(_assignment(study.space, trial))
            elif (observation := _observation(study.space, trial)) is not None:
                completed.append(observation)
        seed = zlib.crc32(f"{study.project}/{study.job_id}".encode()) + len(trials)
        strategy = strategy_for(study.spec.get("algorithm"))
        suggestions = strategy.suggest(study.space, study.goal, completed, pending, room, seed)
        if len(suggestions) < room:
            study.exhausted = True  # a grid with nothing left
        for offset, assignment in enumerate(suggestions):
            trial_id = str(len(trials) + offset + 1)
            entry = {
                "trialId": trial_id,
                "hyperparameters": _rendered(study.space, assignment),
                "state": "QUEUED",
            }
            self._repo.update(
                study.key, lambda d, e=entry: self._with_output(d, study, {e["trialId"]: e})
            )
            self._run_trial(study, trial_id, assignment)

    def _run_trial(self, study: _Study, trial_id: str, assignment: Assignment) -> None:
        """Launch a trial, or launch it again (same id and parameters) after an interruption."""
        self._clear_internal(study, trial_id)
        running = study.running[trial_id] = self._running(study, trial_id)
        running.since = time.time()
        running.reader.metric_file.unlink(missing_ok=True)  # an earlier attempt's reports
        try:
            self._runner.start(
                study.project,
                study.job_id,
                study.training_input,
                on_state=self._state_event(study, trial_id),
                on_finished=self._finished_event(study, trial_id),
                trial_id=trial_id,
                extra_args=trainer_flags(study.space, assignment),
                extra_env=study.extra_env,
            )
        except ApiError as exc:
            study.events.put(("finished", trial_id, RunOutcome("FAILED", exc.message)))
        except Exception as exc:
            log.exception("could not start trial %s of %s/%s", trial_id, *study.key)
            message = f"Cairn could not start the trial: {exc}"
            study.events.put(("finished", trial_id, RunOutcome("FAILED", message)))

    def _state_event(self, study: _Study, trial_id: str) -> Callable[[str], None]:
        return lambda state: study.events.put(("state", trial_id, state))

    def _finished_event(self, study: _Study, trial_id: str) -> Callable[[Any], None]:
        return lambda outcome: study.events.put(("finished", trial_id, outcome))

    def _trial_state(self, study: _Study, trial_id: str, state: str) -> None:
        def advance(trial: dict[str, Any]) -> dict[str, Any]:
            if trial.get("state") in TERMINAL_STATES:
                return trial
            updated = {**trial, "state": state}
            if state == "RUNNING" and "startTime" not in trial:
                updated["startTime"] = format_timestamp(now())
            return updated

        self._update_trials(study, {trial_id: advance})
        if state == "RUNNING":
            study.on_state("RUNNING")

    def _trial_finished(self, study: _Study, trial_id: str, outcome: Any) -> None:
        if self._closing.is_set():
            return  # the runner recorded the interruption; the trial runs again next start
        running = study.running.get(trial_id)
        stopped_early = running is not None and running.stop_requested
        state = str(outcome.state)
        if getattr(outcome, "interrupted", False) and not stopped_early:
            log.info(
                "tuning job %s/%s: trial %s was interrupted; running it again", *study.key, trial_id
            )
            doc = self._repo.get(study.key) or {}
            self._run_trial(study, trial_id, _assignment(study.space, _trial(doc, trial_id)))
            return
        study.running.pop(trial_id, None)
        measurements = running.read() if running is not None else []
        message = getattr(outcome, "error_message", None)
        if state == "SUCCEEDED" or (stopped_early and state in ("CANCELLED", "FAILED")):
            stopped_early = stopped_early and state != "SUCCEEDED"
            if measurements:
                state, message = "SUCCEEDED", None
            else:
                state, message = "FAILED", _no_metric_message(study.tag, trial_id)
        elif state == "CANCELLED":
            message = None

        def finish(trial: dict[str, Any]) -> dict[str, Any]:
            updated = {**_with_measurements(trial, measurements), "state": state}
            updated["endTime"] = format_timestamp(now())
            updated.setdefault("startTime", updated["endTime"])
            if stopped_early:
                updated["isTrialStoppedEarly"] = True
            return updated

        self._update_trials(study, {trial_id: finish})
        if message:
            self._note_error(study, trial_id, message)

    def _observe_running(self, study: _Study, doc: Mapping[str, Any]) -> None:
        """Show each running trial's latest metric (one update for all), and stop the ones
        that cannot catch up."""
        early_stopping = bool(study.spec.get("enableTrialEarlyStopping"))
        finished_curves = self._finished_curves(doc) if early_stopping else []
        changes: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}
        for trial_id, running in list(study.running.items()):
            measurements = running.read()
            if measurements == running.measurements:
                continue
            running.measurements = measurements
            changes[trial_id] = partial(_with_measurements, measurements=measurements)
            if not early_stopping or running.stop_requested:
                continue
            curve = [(m.step, m.value) for m in measurements]
            if should_stop(study.goal, curve, finished_curves):
                running.stop_requested = True
                self._mark_internal(study, "stopRequested", trial_id)
                log.info("tuning job %s/%s: stopping trial %s early", *study.key, trial_id)
                self._runner.cancel(study.project, study.job_id, trial_id)
        if changes:
            self._update_trials(study, changes)

    def _finished_curves(self, doc: Mapping[str, Any]) -> list[list[tuple[int, float]]]:
        return [
            [(int(m.get("trainingStep") or 0), float(m["objectiveValue"])) for m in metrics]
            for trial in _trials(doc)
            if trial.get("state") == "SUCCEEDED"
            and not trial.get("isTrialStoppedEarly")
            and (metrics := trial.get("allMetrics"))
        ]

    def _failure_limit(self, study: _Study, doc: Mapping[str, Any]) -> RunOutcome | None:
        trials = _trials(doc)
        errors = _errors(doc)
        failed = [t for t in trials if t.get("state") == "FAILED"]
        limit = int(study.spec.get("maxFailedTrials") or 0)
        if limit > 0:
            if len(failed) < limit:
                return None
        elif len(failed) < min(AUTO_FAILURE_LIMIT, _max_trials(study)) or any(
            t.get("state") == "SUCCEEDED" for t in trials
        ):
            return None
        reason = (
            f"maxFailedTrials is {limit}"
            if limit > 0
            else f"the first {len(failed)} trials all failed"
        )
        summary = _summary(failed, errors)
        return RunOutcome("FAILED", f"{len(failed)} trials failed ({reason}). {summary}")

    def _final_outcome(self, study: _Study) -> RunOutcome:
        doc = self._repo.get(study.key) or {}
        trials = _trials(doc)
        if any(t.get("state") == "SUCCEEDED" for t in trials):
            return RunOutcome("SUCCEEDED")
        failed = [t for t in trials if t.get("state") == "FAILED"]
        return RunOutcome("FAILED", "No trial succeeded. " + _summary(failed, _errors(doc)))

    def _stop_all(self, study: _Study) -> None:
        """End every trial after Cairn itself failed; none is left QUEUED or RUNNING."""
        try:
            self._runner.cancel(study.project, study.job_id)
            deadline = time.monotonic() + _STOP_WAIT_S
            while study.running and time.monotonic() < deadline:
                self._handle_events(study, timeout=self._poll_s)
            self._repo.update(study.key, lambda doc: self._cancel_unfinished(doc, study))
        except Exception:
            log.exception("could not stop the trials of %s/%s", *study.key)

    def _cancel_unfinished(self, doc: dict[str, Any], study: _Study) -> dict[str, Any]:
        ended = format_timestamp(now())
        changed = {
            str(t["trialId"]): {**t, "state": "CANCELLED", "endTime": ended}
            for t in _trials(doc)
            if t.get("state") not in TERMINAL_STATES
        }
        return self._with_output(doc, study, changed)

    # ----- the job document -------------------------------------------------------------

    def _update_trials(
        self, study: _Study, changes: Mapping[str, Callable[[dict[str, Any]], dict[str, Any]]]
    ) -> None:
        """Apply each trial's change in one atomic update of the job's document."""

        def apply(doc: dict[str, Any]) -> dict[str, Any] | None:
            changed = {
                trial_id: change(dict(current))
                for trial_id, change in changes.items()
                if (current := _trial(doc, trial_id)) is not None
            }
            return self._with_output(doc, study, changed) if changed else None

        self._repo.update(study.key, apply)

    def _with_output(
        self, doc: dict[str, Any], study: _Study, changed: Mapping[str, dict[str, Any]]
    ) -> dict[str, Any]:
        """The document with `changed` trials replaced or added, and `trainingOutput`
        recomputed: trials best first, counts, consumed ML units."""
        trials = {str(t["trialId"]): t for t in _trials(doc)}
        trials.update(changed)
        ordered = sorted(trials.values(), key=lambda t: _rank(study.goal, t))
        replicas = study.replicas
        hours = sum(_hours(t) for t in ordered)
        output = {
            **(doc.get("trainingOutput") or {}),
            "isHyperparameterTuningJob": True,
            "hyperparameterMetricTag": study.tag,
            "completedTrialCount": str(sum(1 for t in ordered if t.get("state") == "SUCCEEDED")),
            "consumedMLUnits": round(hours * replicas, 6),
            "trials": ordered,
        }
        return {**doc, "trainingOutput": output}

    # Cairn's own notes on trials live in the document's `_tuning` (never rendered):
    # "stopRequested" lists trial ids, "errors" maps a trial id to why it failed (AI
    # Platform's HyperparameterOutput has no field for that).

    def _mark_internal(self, study: _Study, name: str, trial_id: str) -> None:
        def mark(doc: dict[str, Any]) -> dict[str, Any]:
            internal = _internal(doc)
            internal[name] = sorted({*internal.get(name, []), trial_id}, key=int)
            return {**doc, "_tuning": internal}

        self._repo.update(study.key, mark)

    def _note_error(self, study: _Study, trial_id: str, message: str) -> None:
        def note(doc: dict[str, Any]) -> dict[str, Any]:
            internal = _internal(doc)
            internal["errors"] = {**internal.get("errors", {}), trial_id: message[-2000:]}
            return {**doc, "_tuning": internal}

        self._repo.update(study.key, note)

    def _clear_internal(self, study: _Study, trial_id: str) -> None:
        """A trial runs (again): forget that it was stopped, and why it failed."""

        def clear(doc: dict[str, Any]) -> dict[str, Any] | None:
            internal = _internal(doc)
            cleaned = {
                "stopRequested": [i for i in internal.get("stopRequested", []) if i != trial_id],
                "errors": {k: v for k, v in internal.get("errors", {}).items() if k != trial_id},
            }
            unchanged = all(cleaned[name] == internal.get(name, cleaned[name]) for name in cleaned)
            return None if unchanged else {**doc, "_tuning": cleaned}

        self._repo.update(study.key, clear)


# ----- helpers on trial entries (HyperparameterOutput as JSON) ------------------------------


def _trials(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list((doc.get("trainingOutput") or {}).get("trials") or [])


def _trial(doc: Mapping[str, Any], trial_id: str) -> dict[str, Any] | None:
    return next((t for t in _trials(doc) if str(t.get("trialId")) == trial_id), None)


def _internal(doc: Mapping[str, Any]) -> dict[str, Any]:
    return dict(doc.get("_tuning") or {})


def _errors(doc: Mapping[str, Any]) -> dict[str, str]:
    return dict(_internal(doc).get("errors") or {})


def _ran_longer_than(doc: Mapping[str, Any], seconds: float) -> bool:
    """`scheduling.maxRunningTime` bounds the whole tuning job, counted from RUNNING."""
    start = doc.get("startTime")
    if not start:
        return False
    return (_parse_time(format_timestamp(now())) - _parse_time(start)).total_seconds() > seconds


def _max_trials(study: _Study) -> int:
    return max(1, int(study.spec.get("maxTrials") or 1))


def _rendered(space: SearchSpace, assignment: Assignment) -> dict[str, str]:
    return {p.name: format_value(p, assignment[p.name]) for p in space if p.name in assignment}


def _assignment(space: SearchSpace, trial: Mapping[str, Any] | None) -> Assignment:
    """A trial's parameters, typed again from the strings AI Platform shows them as."""
    assignment: Assignment = {}
    for name, text in ((trial or {}).get("hyperparameters") or {}).items():
        try:
            parameter = space[name]
        except KeyError:
            continue
        if parameter.kind == "CATEGORICAL":
            assignment[name] = str(text)
        elif parameter.kind == "INTEGER":
            assignment[name] = int(float(text))
        else:
            assignment[name] = float(text)
    return assignment


def _observation(space: SearchSpace, trial: Mapping[str, Any]) -> Observation | None:
    """What a finished trial teaches the strategy: its objective, or None when it failed
    (infeasible); None for trials that say nothing (running, cancelled)."""
    state = trial.get("state")
    assignment = _assignment(space, trial)
    if state == "SUCCEEDED" and (final := trial.get("finalMetric")):
        return Observation(assignment, float(final["objectiveValue"]))
    if state == "FAILED":
        return Observation(assignment, None)
    return None


def _with_measurements(
    trial: dict[str, Any], measurements: Sequence[Measurement]
) -> dict[str, Any]:
    if not measurements:
        return trial
    kept = measurements[-MAX_MEASUREMENTS:]
    metrics = [{"trainingStep": str(m.step), "objectiveValue": m.value} for m in kept]
    return {**trial, "allMetrics": metrics, "finalMetric": metrics[-1]}


def _rank(goal: Goal, trial: Mapping[str, Any]) -> tuple[int, float, int]:
    """Best first: succeeded trials by objective, then the rest by trial id."""
    final = trial.get("finalMetric")
    trial_number = int(trial.get("trialId") or 0)
    if trial.get("state") == "SUCCEEDED" and final:
        value = float(final["objectiveValue"])
        return (0, -value if goal == "MAXIMIZE" else value, trial_number)
    return (1, 0.0, trial_number)


def _hours(trial: Mapping[str, Any]) -> float:
    start = trial.get("startTime")
    if not start:
        return 0.0
    end = trial.get("endTime") or format_timestamp(now())
    seconds = (_parse_time(end) - _parse_time(start)).total_seconds()
    return max(0.0, seconds) / 3600


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _no_metric_message(tag: str, trial_id: str) -> str:
    return (
        f"Trial {trial_id} reported no value for the metric '{tag}'. Report it with "
        "cloudml-hypertune (hypertune.HyperTune().report_hyperparameter_tuning_metric("
        f"hyperparameter_metric_tag='{tag}', metric_value=..., global_step=...)), or write a "
        f"TensorFlow summary scalar tagged '{tag}' under the job directory's '{trial_id}' "
        "subdirectory."
    )


def _summary(failed: Sequence[Mapping[str, Any]], errors: Mapping[str, str], limit: int = 3) -> str:
    """The failed trials' errors, the last line of each (where a traceback names the error)."""
    parts = []
    for trial in failed[:limit]:
        trial_id = str(trial.get("trialId"))
        lines = str(errors.get(trial_id) or "no message").strip().splitlines()
        parts.append(f"Trial {trial_id}: {lines[-1] if lines else 'no message'}")
    if len(failed) > limit:
        parts.append(f"and {len(failed) - limit} more")
    return "; ".join(parts)
