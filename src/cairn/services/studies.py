"""Vizier studies and trials on Cairn's tuning engine.

A study document holds its configuration and, under `_trialCount`, the last trial number
given out: every new trial takes its number in one atomic update of that counter, so ids
run "1", "2", … in order and are never reused, even after a delete. Changes to the set of a
study's trials (suggest, create, the study's delete) also hold the study's lock, so that two
suggestions at once neither hand out the same grid point nor both answer one client.

Suggestions are stateless: each reads the study's whole history (see `cairn.tuning.base`).
Operations (suggest, checkEarlyStoppingState) do their work in the request and are stored
already done under the study's location.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

from cairn.domain.errors import ApiError, Code, already_exists, failed_precondition, invalid_field
from cairn.domain.names import check_id
from cairn.domain.studies import (
    MAX_MEASUREMENTS_PER_TRIAL,
    MAX_REASON_CHARS,
    MAX_TRIALS_PER_STUDY,
    OUTPUT_ONLY_TRIAL_FIELDS,
    PENDING_TRIAL_STATES,
    AddTrialMeasurementRequest,
    CheckTrialEarlyStoppingStateRequest,
    CompleteTrialRequest,
    ListOptimalTrialsRequest,
    Measurement,
    StopTrialRequest,
    Study,
    SuggestTrialsRequest,
    Trial,
    duration_seconds,
    engine_config,
    format_duration,
    metric_value,
    parse_request,
    validate_measurement,
    validate_study_config,
    validate_suggest_request,
)
from cairn.domain.wire import format_timestamp, now
from cairn.services.locations import LocationOperations, LocationService
from cairn.services.records import public
from cairn.services.trial_parameters import assignment_of, client_parameters, parameters_json
from cairn.store import DuplicateKeyError
from cairn.tuning.base import Observation, Strategy
from cairn.tuning.objectives import chebyshev_observations, pareto_front, random_weights
from cairn.tuning.space import Assignment, Goal, SearchSpace, goal_of

COUNTER_KEY = "_trialCount"
_TYPE = "type.googleapis.com/google.cloud.ml.v1."
SUGGEST_METADATA_TYPE = _TYPE + "SuggestTrialsMetadata"
SUGGEST_RESPONSE_TYPE = _TYPE + "SuggestTrialsResponse"
# Google's proto spells it so ("Metatdata"); clients match the type URL as it is.
EARLY_STOPPING_METADATA_TYPE = _TYPE + "CheckTrialEarlyStoppingStateMetatdata"
EARLY_STOPPING_RESPONSE_TYPE = _TYPE + "CheckTrialEarlyStoppingStateResponse"
_LOCK_STRIPES = 64
_PAGE = 100

StrategyFor = Callable[[str | None], Strategy]
ShouldStop = Callable[..., bool]
Key = tuple[str, str, str]


class StudyService:
    def __init__(
        self,
        studies: Any,
        trials: Any,
        locations: LocationService,
        operations: LocationOperations,
        *,
        strategy_for: StrategyFor,
        should_stop: ShouldStop,
    ) -> None:
        self._studies = studies
        self._trials = trials
        self._locations = locations
        self._operations = operations
        self._strategy_for = strategy_for
        self._should_stop = should_stop
        # Striped, so memory stays flat however many studies exist.
        self._locks = [threading.Lock() for _ in range(_LOCK_STRIPES)]

    # ----- studies -------------------------------------------------------------------------

    def create(
        self, project: str, location: str, study_id: str | None, body: Any
    ) -> dict[str, Any]:
        self._locations.ensure(project, location)
        if not study_id:
            raise invalid_field("study_id", "A study id is required (the studyId query parameter).")
        check_id(study_id, "study_id")
        study = Study.parse(body, "study")
        study.state = study.create_time = study.inactive_reason = None
        validate_study_config(study.study_config)
        study.name = _study_name(project, location, study_id)
        study.state = "ACTIVE"
        study.create_time = now()
        doc = {**study.to_json(), COUNTER_KEY: 0}
        try:
            self._studies.insert((project, location, study_id), doc)
        except DuplicateKeyError:
            raise already_exists(
                "study_id", f"A study with the id '{study_id}' already exists."
            ) from None
        return public(doc)

    def get(self, project: str, location: str, study: str) -> dict[str, Any]:
        return public(self._require_study(project, location, study))

    def list_studies(self, project: str, location: str) -> dict[str, Any]:
        """Every study of the location (the method has no paging parameters)."""
        self._locations.check(project, location)
        studies = [public(doc) for doc in _all(self._studies, (project, location))]
        return {"studies": studies} if studies else {}

    def delete(self, project: str, location: str, study: str) -> dict[str, Any]:
        key = (project, location, study)
        with self._lock(key):
            self._require_study(project, location, study)
            # Trials first: a crash midway leaves the study to delete again, never
            # trials without a study that a new study of the same id would inherit.
            for trial in list(_all(self._trials, key)):
                self._trials.delete((*key, _trial_id(trial)))
            self._studies.delete(key)
        return {}

    # ----- trials: create, read, delete ----------------------------------------------------

    def create_trial(self, project: str, location: str, study: str, body: Any) -> dict[str, Any]:
        trial = Trial.parse(body, "trial")
        for name in OUTPUT_ONLY_TRIAL_FIELDS:
            setattr(trial, name, None)
        key = (project, location, study)
        with self._lock(key):
            study_doc = self._require_study(project, location, study)
            space = _space_of(study_doc)
            parameters = client_parameters(trial.parameters or [], space)
            measurements = trial.measurements or []
            if len(measurements) > MAX_MEASUREMENTS_PER_TRIAL:
                raise invalid_field(
                    "trial.measurements",
                    f"A trial holds at most {MAX_MEASUREMENTS_PER_TRIAL} measurements.",
                )
            for index, measurement in enumerate(measurements):
                validate_measurement(measurement, f"trial.measurements[{index}]")
            if trial.final_measurement is not None:
                validate_measurement(trial.final_measurement, "trial.final_measurement")
            state = _created_state(trial)
            started = format_timestamp(now())
            doc: dict[str, Any] = {"state": state, "parameters": parameters}
            if measurements:
                doc["measurements"] = [m.to_json() for m in measurements]
            if state == "COMPLETED":
                final = (
                    trial.final_measurement.to_json()
                    if trial.final_measurement is not None
                    else doc["measurements"][-1]
                )
                _check_reports_every_metric(final, study_doc, "trial.final_measurement")
                doc["finalMeasurement"] = final
                doc["endTime"] = started
            doc["startTime"] = started
            (trial_id,) = self._allocate(key, 1)
            doc = {"name": _trial_name(key, trial_id), **doc}
            self._trials.insert((*key, trial_id), doc)
        return doc

    def get_trial(self, project: str, location: str, study: str, trial: str) -> dict[str, Any]:
        return self._require_trial((project, location, study), trial)

    def list_trials(self, project: str, location: str, study: str) -> dict[str, Any]:
        key = (project, location, study)
        self._require_study(*key)
        trials = list(_all(self._trials, key))
        return {"trials": trials} if trials else {}

    def delete_trial(self, project: str, location: str, study: str, trial: str) -> dict[str, Any]:
        key = (project, location, study)
        self._require_trial(key, trial)
        if not self._trials.delete((*key, trial)):
            raise _trial_not_found(key, trial)
        return {}

    # ----- suggestions ---------------------------------------------------------------------

    def suggest(self, project: str, location: str, study: str, body: Any) -> dict[str, Any]:
        """An operation, already done, whose response holds the trials to run.

        A client that still has ACTIVE trials gets those back first; then trials a user
        REQUESTED (created without running them) are handed out; then new suggestions.
        """
        client_id, count = validate_suggest_request(parse_request(SuggestTrialsRequest, body))
        started = now()
        key = (project, location, study)
        with self._lock(key):
            study_doc = self._require_study(*key)
            trials = list(_all(self._trials, key))
            given = [
                t for t in trials if t.get("state") == "ACTIVE" and t.get("clientId") == client_id
            ][:count]
            for trial in trials:
                if len(given) == count:
                    break
                if trial.get("state") == "REQUESTED" and (
                    handed := self._hand_out(key, trial, client_id)
                ):
                    given.append(handed)
            if len(given) < count and study_doc.get("state") == "ACTIVE":
                given.extend(
                    self._new_trials(key, study_doc, trials, client_id, count - len(given))
                )
                study_doc = self._require_study(*key)
        response: dict[str, Any] = {"@type": SUGGEST_RESPONSE_TYPE}
        if given:
            response["trials"] = given
        response |= {
            "studyState": study_doc.get("state", "ACTIVE"),
            "startTime": format_timestamp(started),
            "endTime": format_timestamp(now()),
        }
        metadata = {
            "@type": SUGGEST_METADATA_TYPE,
            "study": _study_name(*key),
            "createTime": format_timestamp(started),
            "suggestionCount": count,
            "clientId": client_id,
        }
        return self._operations.record_done(
            project, location, ("suggest", study), metadata, response
        )

    def _hand_out(self, key: Key, trial: dict[str, Any], client_id: str) -> dict[str, Any] | None:
        """A REQUESTED trial made ACTIVE for `client_id`; None if it changed meanwhile (its
        client completed or deleted it: those calls do not take the study's lock)."""
        handed: dict[str, dict[str, Any]] = {}

        def activate(doc: dict[str, Any]) -> dict[str, Any] | None:
            if doc.get("state") != "REQUESTED":
                return None
            handed["trial"] = {
                **doc,
                "state": "ACTIVE",
                "clientId": client_id,
                "startTime": format_timestamp(now()),
            }
            return handed["trial"]

        self._trials.update((*key, _trial_id(trial)), activate)
        return handed.get("trial")

    def _new_trials(
        self,
        key: Key,
        study_doc: dict[str, Any],
        trials: list[dict[str, Any]],
        client_id: str,
        count: int,
    ) -> list[dict[str, Any]]:
        config = engine_config(study_doc["studyConfig"])
        space = SearchSpace.from_study_config(config)
        metrics = _metrics_of(study_doc)
        strategy = self._strategy_for(config.get("algorithm"))
        pending = [assignment_of(t) for t in trials if t.get("state") in PENDING_TRIAL_STATES]
        rows = [
            (assignment_of(t), _objectives_of(t, metrics))
            for t in trials
            if t.get("state") == "COMPLETED"
        ]
        number = int(study_doc.get(COUNTER_KEY, 0))
        name = _study_name(*key)
        goals = [goal for _, goal in metrics]
        assignments: list[Assignment]
        if len(metrics) == 1:
            completed = [Observation(p, None if v is None else v[0]) for p, v in rows]
            seed = _seed(name, number)
            assignments = strategy.suggest(space, goals[0], completed, pending, count, seed)[:count]
        else:
            # ParEGO: one random Chebyshev scalarisation per suggestion (tuning.objectives).
            assignments = []
            for offset in range(count):
                seed = _seed(name, number + offset)
                weights = random_weights(seed, len(metrics))
                completed = chebyshev_observations(rows, goals, weights)
                more = strategy.suggest(
                    space, "MAXIMIZE", completed, [*pending, *assignments], 1, seed
                )[:1]
                if not more:
                    break
                assignments.extend(more)
        if len(assignments) < count and _is_finite(space):
            # A finite space with nothing left to suggest: Vizier calls such a study done.
            self._studies.update(key, lambda doc: {**doc, "state": "COMPLETED"})
        if not assignments:
            return []
        created: list[dict[str, Any]] = []
        started = format_timestamp(now())
        for trial_id, assignment in zip(
            self._allocate(key, len(assignments)), assignments, strict=True
        ):
            doc = {
                "name": _trial_name(key, trial_id),
                "state": "ACTIVE",
                "parameters": parameters_json(space, assignment),
                "startTime": started,
                "clientId": client_id,
            }
            self._trials.insert((*key, trial_id), doc)
            created.append(doc)
        return created

    # ----- trials: measurements, completion, stopping --------------------------------------

    def add_measurement(
        self, project: str, location: str, study: str, trial: str, body: Any
    ) -> dict[str, Any]:
        request = parse_request(AddTrialMeasurementRequest, body)
        if request.measurement is None:
            raise invalid_field("measurement", "A measurement is required.")
        validate_measurement(request.measurement, "measurement")
        measurement = request.measurement
        key = (project, location, study)

        def append(doc: dict[str, Any]) -> dict[str, Any]:
            if doc.get("state") != "ACTIVE":
                raise failed_precondition(
                    f"Trial {doc['name']} is {doc.get('state')}; only an ACTIVE trial takes "
                    "measurements."
                )
            measurements = list(doc.get("measurements") or [])
            if len(measurements) >= MAX_MEASUREMENTS_PER_TRIAL:
                raise failed_precondition(
                    f"Trial {doc['name']} already holds {MAX_MEASUREMENTS_PER_TRIAL} "
                    "measurements, the most one trial keeps."
                )
            measurements.append(_with_elapsed_time(measurement, doc))
            return {**doc, "measurements": measurements}

        return self._update_trial(key, trial, append)

    def complete(
        self, project: str, location: str, study: str, trial: str, body: Any
    ) -> dict[str, Any]:
        request = parse_request(CompleteTrialRequest, body)
        if request.infeasible_reason and not request.trial_infeasible:
            raise invalid_field(
                "infeasible_reason", "Give a reason only when trialInfeasible is true."
            )
        if request.infeasible_reason and len(request.infeasible_reason) > MAX_REASON_CHARS:
            raise invalid_field(
                "infeasible_reason", f"At most {MAX_REASON_CHARS} characters are kept."
            )
        if request.final_measurement is not None and not request.trial_infeasible:
            validate_measurement(request.final_measurement, "final_measurement")
        key = (project, location, study)
        study_doc = self._require_study(*key)

        def finish(doc: dict[str, Any]) -> dict[str, Any]:
            if doc.get("state") == "COMPLETED":
                raise failed_precondition(f"Trial {doc['name']} is already COMPLETED.")
            done = {**doc, "state": "COMPLETED", "endTime": format_timestamp(now())}
            if request.trial_infeasible:
                # Vizier ignores a final measurement given with trialInfeasible.
                done["trialInfeasible"] = True
                if request.infeasible_reason:
                    done["infeasibleReason"] = request.infeasible_reason
                return done
            if request.final_measurement is not None:
                final = _with_elapsed_time(request.final_measurement, doc)
            elif doc.get("measurements"):
                final = doc["measurements"][-1]  # Vizier's choice: the latest report
            else:
                raise invalid_field(
                    "final_measurement",
                    "The trial has no measurements: give finalMeasurement, or set trialInfeasible.",
                )
            _check_reports_every_metric(final, study_doc, "final_measurement")
            done["finalMeasurement"] = final
            return done

        return self._update_trial(key, trial, finish)

    def stop(
        self, project: str, location: str, study: str, trial: str, body: Any
    ) -> dict[str, Any]:
        parse_request(StopTrialRequest, body)

        def mark(doc: dict[str, Any]) -> dict[str, Any] | None:
            if doc.get("state") == "COMPLETED":
                raise failed_precondition(f"Trial {doc['name']} is already COMPLETED.")
            if doc.get("state") == "STOPPING":
                return None
            return {**doc, "state": "STOPPING"}

        return self._update_trial((project, location, study), trial, mark)

    def check_early_stopping(
        self, project: str, location: str, study: str, trial: str, body: Any
    ) -> dict[str, Any]:
        """The median stopping rule, when the study's automatedStoppingConfig asks for it.

        Both of Vizier's rules (median and decay curve) are answered with the median rule:
        the trial's best value so far against the median of the completed trials' running
        averages up to the same step (or elapsed time, with `useElapsedTime`).
        """
        parse_request(CheckTrialEarlyStoppingStateRequest, body)
        started = now()
        key = (project, location, study)
        study_doc = self._require_study(*key)
        doc = self._require_trial(key, trial)
        rule = _stopping_rule(study_doc)
        state = doc.get("state")
        stop = state == "STOPPING"
        if rule is not None and state in ("ACTIVE", "REQUESTED"):
            use_elapsed_time = bool(rule.get("useElapsedTime"))
            metric, goal = _metrics_of(study_doc)[0]
            curve = _curve(doc, metric, use_elapsed_time)
            others = [
                other_curve
                for other in _all(self._trials, key)
                if other.get("state") == "COMPLETED" and not other.get("trialInfeasible")
                if (other_curve := _curve(other, metric, use_elapsed_time))
            ]
            stop = bool(curve) and self._should_stop(goal, curve, others)
            if stop:
                self._trials.update(
                    (*key, trial),
                    lambda current: (
                        {**current, "state": "STOPPING"}
                        if current.get("state") in ("ACTIVE", "REQUESTED")
                        else None
                    ),
                )
        response: dict[str, Any] = {"@type": EARLY_STOPPING_RESPONSE_TYPE}
        if stop:
            response["shouldStop"] = True
        response |= {
            "startTime": format_timestamp(started),
            "endTime": format_timestamp(now()),
        }
        metadata = {
            "@type": EARLY_STOPPING_METADATA_TYPE,
            "createTime": format_timestamp(started),
            "study": _study_name(*key),
            "trial": doc["name"],
        }
        return self._operations.record_done(
            project, location, ("checkearlystopping", study, trial), metadata, response
        )

    def list_optimal(self, project: str, location: str, study: str, body: Any) -> dict[str, Any]:
        """The Pareto front of the completed feasible trials over every metric (for one
        metric: the trials holding the best value)."""
        parse_request(ListOptimalTrialsRequest, body)
        key = (project, location, study)
        study_doc = self._require_study(*key)
        metrics = _metrics_of(study_doc)
        candidates: list[dict[str, Any]] = []
        points: list[list[float]] = []
        for trial in _all(self._trials, key):
            if trial.get("state") != "COMPLETED" or trial.get("trialInfeasible"):
                continue
            values = _objectives_of(trial, metrics)
            if values is not None:
                candidates.append(trial)
                points.append(values)
        front = pareto_front(points, [goal for _, goal in metrics])
        trials = [candidates[index] for index in front]
        return {"trials": trials} if trials else {}

    # ----- helpers -------------------------------------------------------------------------

    def _lock(self, key: Key) -> threading.Lock:
        return self._locks[hash(key) % _LOCK_STRIPES]

    def _require_study(self, project: str, location: str, study: str) -> dict[str, Any]:
        self._locations.check(project, location)
        check_id(study, "name")
        doc = self._studies.get((project, location, study))
        if doc is None:
            raise ApiError(
                Code.NOT_FOUND, f"Study {_study_name(project, location, study)} does not exist."
            )
        return dict(doc)

    def _require_trial(self, key: Key, trial: str) -> dict[str, Any]:
        self._locations.check(key[0], key[1])
        check_id(key[2], "name")
        doc = self._trials.get((*key, trial)) if _is_trial_id(trial) else None
        if doc is None:
            raise _trial_not_found(key, trial)
        return dict(doc)

    def _update_trial(
        self, key: Key, trial: str, mutate: Callable[[dict[str, Any]], dict[str, Any] | None]
    ) -> dict[str, Any]:
        self._require_trial(key, trial)
        updated = self._trials.update((*key, trial), mutate)
        if updated is None:
            raise _trial_not_found(key, trial)
        return dict(updated)

    def _allocate(self, key: Key, count: int) -> list[str]:
        """`count` fresh trial ids, taken in one atomic update of the study's counter."""
        taken: dict[str, int] = {}

        def take(doc: dict[str, Any]) -> dict[str, Any]:
            first = int(doc.get(COUNTER_KEY, 0))
            if first + count > MAX_TRIALS_PER_STUDY:
                raise failed_precondition(
                    f"Study {doc['name']} has had {first} trials; a study holds at most "
                    f"{MAX_TRIALS_PER_STUDY}. Create a new study to go on."
                )
            taken["first"] = first
            return {**doc, COUNTER_KEY: first + count}

        if self._studies.update(key, take) is None:
            raise ApiError(Code.NOT_FOUND, f"Study {_study_name(*key)} does not exist.")
        return [str(taken["first"] + offset + 1) for offset in range(count)]


# ----- names and documents --------------------------------------------------------------------


def _study_name(project: str, location: str, study: str) -> str:
    return f"projects/{project}/locations/{location}/studies/{study}"


def _trial_name(key: Key, trial_id: str) -> str:
    return f"{_study_name(*key)}/trials/{trial_id}"


def _trial_id(doc: dict[str, Any]) -> str:
    return str(doc["name"]).rsplit("/", 1)[-1]


def _is_trial_id(value: str) -> bool:
    return value.isascii() and value.isdigit() and len(value) <= 18


def _trial_not_found(key: Key, trial: str) -> ApiError:
    shown_id = trial if len(trial) <= 64 else trial[:64] + "..."
    return ApiError(Code.NOT_FOUND, f"Trial {_trial_name(key, shown_id)} does not exist.")


def _all(repo: Any, parent: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    """Every document under `parent`, in creation order, a page at a time."""
    cursor: str | None = None
    while True:
        docs, cursor = repo.page(parent, after=cursor, limit=_PAGE)
        yield from docs
        if cursor is None:
            return


def _seed(study_name: str, trial_count: int) -> int:
    """Reproducible per study and history length; 32 bits, as numpy's generators take."""
    digest = hashlib.sha256(f"{study_name}#{trial_count}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def _space_of(study_doc: dict[str, Any]) -> SearchSpace:
    return SearchSpace.from_study_config(engine_config(study_doc["studyConfig"]))


def _is_finite(space: SearchSpace) -> bool:
    return all(parameter.kind != "DOUBLE" for parameter in space)


def _metrics_of(study_doc: dict[str, Any]) -> list[tuple[str, Goal]]:
    return [
        (str(metric["metric"]), goal_of(metric.get("goal")))
        for metric in study_doc["studyConfig"]["metrics"]
    ]


def _objectives_of(
    trial: dict[str, Any], metrics: Sequence[tuple[str, Goal]]
) -> list[float] | None:
    """The final values of every metric, or None: infeasible (or a metric unreported)."""
    if trial.get("trialInfeasible"):
        return None
    values = [metric_value(trial.get("finalMeasurement"), name) for name, _ in metrics]
    if any(value is None for value in values):
        return None
    return [float(value) for value in values if value is not None]


def _check_reports_every_metric(
    measurement: dict[str, Any], study_doc: dict[str, Any], path: str
) -> None:
    for name, _ in _metrics_of(study_doc):
        if metric_value(measurement, name) is None:
            raise invalid_field(
                f"{path}.metrics",
                f"The final measurement must report every metric of the study; "
                f"'{name}' is missing.",
            )


def _stopping_rule(study_doc: dict[str, Any]) -> dict[str, Any] | None:
    config = study_doc["studyConfig"].get("automatedStoppingConfig") or {}
    for kind in ("medianAutomatedStoppingConfig", "decayCurveStoppingConfig"):
        if kind in config:
            rule: dict[str, Any] = config[kind]
            return rule
    return None


def _curve(trial: dict[str, Any], metric: str, use_elapsed_time: bool) -> list[tuple[int, float]]:
    """The trial's reports of `metric` as (step, value), ordered by step; with elapsed time as
    the axis, its milliseconds stand for the step."""
    points: list[tuple[int, float]] = []
    for measurement in trial.get("measurements") or []:
        value = metric_value(measurement, metric)
        if value is None:
            continue
        if use_elapsed_time:
            x = round(duration_seconds(measurement.get("elapsedTime")) * 1000)
        else:
            x = int(measurement.get("stepCount", 0))
        points.append((x, value))
    return sorted(points, key=lambda point: point[0])


def _with_elapsed_time(measurement: Measurement, trial: dict[str, Any]) -> dict[str, Any]:
    """The measurement as stored; one without `elapsedTime` gets the time since the trial
    started (the field is the service's to fill on Google)."""
    doc = measurement.to_json()
    if "elapsedTime" not in doc and trial.get("startTime"):
        began = datetime.fromisoformat(str(trial["startTime"]).replace("Z", "+00:00"))
        doc["elapsedTime"] = format_duration((now() - began).total_seconds())
    return doc


def _created_state(trial: Trial) -> str:
    """What a client-made trial starts as: REQUESTED (the service hands it out on a later
    suggest), ACTIVE (the client runs it), or COMPLETED (a result to learn from)."""
    wanted = trial.state if trial.state != "STATE_UNSPECIFIED" else None
    has_final = trial.final_measurement is not None
    if wanted == "STOPPING":
        raise invalid_field(
            "trial.state", "A new trial is REQUESTED, ACTIVE or COMPLETED, not STOPPING."
        )
    if has_final and wanted in (None, "COMPLETED"):
        return "COMPLETED"
    if has_final:
        raise invalid_field(
            "trial.final_measurement",
            f"Only a COMPLETED trial has a final measurement, not {wanted}.",
        )
    if wanted == "COMPLETED":
        if not trial.measurements:
            raise invalid_field(
                "trial.final_measurement",
                "A COMPLETED trial needs a finalMeasurement (or measurements to take it from).",
            )
        return "COMPLETED"
    return wanted or "REQUESTED"
