"""Vizier studies, trials, locations and location operations through google-api-python-client
on a real server (the client's bundled ml v1 discovery document carries these methods)."""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from googleapiclient.errors import HttpError
from tests.remote import unique

LOCATION = "us-central1"
TYPES = "type.googleapis.com/google.cloud.ml.v1."

# Every parameter type, scales, and a conditional child under a categorical value.
ALL_TYPES_CONFIG: dict[str, Any] = {
    "algorithm": "RANDOM_SEARCH",
    "metrics": [{"metric": "accuracy", "goal": "MAXIMIZE"}],
    "parameters": [
        {
            "parameter": "learning_rate",
            "type": "DOUBLE",
            "doubleValueSpec": {"minValue": 0.0001, "maxValue": 0.1},
            "scaleType": "UNIT_LOG_SCALE",
        },
        {
            "parameter": "layers",
            "type": "INTEGER",
            "integerValueSpec": {"minValue": "1", "maxValue": "4"},
        },
        {
            "parameter": "optimizer",
            "type": "CATEGORICAL",
            "categoricalValueSpec": {"values": ["sgd", "adam"]},
            "childParameterSpecs": [
                {
                    "parameter": "momentum",
                    "type": "DISCRETE",
                    "discreteValueSpec": {"values": [0.0, 0.5, 0.9]},
                    "parentCategoricalValues": {"values": ["sgd"]},
                }
            ],
        },
        {
            "parameter": "batch_size",
            "type": "DISCRETE",
            "discreteValueSpec": {"values": [16, 32, 64]},
        },
    ],
}


def one_double(**extra: Any) -> dict[str, Any]:
    return {
        "metrics": [{"metric": "score", "goal": "MAXIMIZE"}],
        "parameters": [
            {"parameter": "x", "type": "DOUBLE", "doubleValueSpec": {"minValue": -2, "maxValue": 2}}
        ],
        **extra,
    }


def error_of(exc: HttpError) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.content)["error"]
    return body


def refused(call: Any, status: str, http: int) -> dict[str, Any]:
    with pytest.raises(HttpError) as raised:
        call.execute()
    error = error_of(raised.value)
    assert (raised.value.resp.status, error["status"]) == (http, status), error
    assert error["code"] == http
    return error


def violated_field(call: Any) -> str:
    error = refused(call, "INVALID_ARGUMENT", 400)
    assert error["details"][0]["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    field: str = error["details"][0]["fieldViolations"][0]["field"]
    assert error["message"].startswith(f"Field: {field} Error: ") or "Invalid" in error["message"]
    return field


@pytest.fixture(scope="module")
def parent() -> str:
    return f"projects/{unique('vizier').replace('_', '-')}/locations/{LOCATION}"


def studies(ml: Any) -> Any:
    return ml.projects().locations().studies()


def trials(ml: Any) -> Any:
    return ml.projects().locations().studies().trials()


def new_study(ml: Any, parent: str, config: dict[str, Any]) -> str:
    study_id = unique("study")
    created = studies(ml).create(parent=parent, studyId=study_id, body={"studyConfig": config})
    name: str = created.execute()["name"]
    assert name == f"{parent}/studies/{study_id}"
    return name


def suggest(ml: Any, study: str, count: int, client: str = "worker") -> dict[str, Any]:
    operation: dict[str, Any] = (
        trials(ml).suggest(parent=study, body={"suggestionCount": count, "clientId": client})
    ).execute()
    assert operation["done"] is True
    return operation


def suggested(ml: Any, study: str, count: int, client: str = "worker") -> list[dict[str, Any]]:
    trial_list: list[dict[str, Any]] = suggest(ml, study, count, client)["response"].get(
        "trials", []
    )
    return trial_list


def values(trial: dict[str, Any]) -> dict[str, Any]:
    """A trial's parameters by name (a oneof value: the one field that is set)."""
    found: dict[str, Any] = {}
    for parameter in trial["parameters"]:
        (field,) = set(parameter) - {"parameter"}
        found[parameter["parameter"]] = parameter[field]
    return found


def measurement(step: int, **metrics: float) -> dict[str, Any]:
    return {
        "stepCount": str(step),
        "metrics": [{"metric": name, "value": value} for name, value in metrics.items()],
    }


def completed_trial(ml: Any, study: str, x: float, curve: list[float]) -> dict[str, Any]:
    """A finished trial given by the client: its parameters, measurements and final value."""
    body = {
        "parameters": [{"parameter": "x", "floatValue": x}],
        "measurements": [measurement(step + 1, score=v) for step, v in enumerate(curve)],
        "finalMeasurement": measurement(len(curve), score=curve[-1]),
    }
    trial: dict[str, Any] = trials(ml).create(parent=study, body=body).execute()
    assert trial["state"] == "COMPLETED"
    return trial


# ----- locations ---------------------------------------------------------------------------------


def test_locations_get_and_list(ml: Any, parent: str) -> None:
    project = parent.rsplit("/locations/", 1)[0]
    listed = ml.projects().locations().list(parent=project).execute()
    names = [location["name"] for location in listed["locations"]]
    assert parent in names and "nextPageToken" not in listed
    first = ml.projects().locations().list(parent=project, pageSize=5).execute()
    second = (
        ml.projects()
        .locations()
        .list(parent=project, pageSize=5, pageToken=first["nextPageToken"])
        .execute()
    )
    assert [loc["name"] for loc in first["locations"] + second["locations"]] == names[:10]
    location = ml.projects().locations().get(name=parent).execute()
    assert location["name"] == parent
    assert {"type": "TRAINING"} in location["capabilities"]
    refused(
        ml.projects().locations().get(name=f"{project}/locations/mars-north1"), "NOT_FOUND", 404
    )


# ----- studies -----------------------------------------------------------------------------------


def test_study_with_every_parameter_type_suggests_valid_trials(ml: Any, parent: str) -> None:
    name = new_study(ml, parent, ALL_TYPES_CONFIG)
    study = studies(ml).get(name=name).execute()
    assert study["state"] == "ACTIVE" and study["createTime"].endswith("Z")
    assert study["studyConfig"]["parameters"][1]["integerValueSpec"] == {
        "minValue": "1",
        "maxValue": "4",
    }
    assert name in [s["name"] for s in studies(ml).list(parent=parent).execute()["studies"]]

    operation = suggest(ml, name, 6)
    assert operation["name"].startswith(f"{parent}/operations/suggest_")
    metadata = operation["metadata"]
    assert metadata["@type"] == TYPES + "SuggestTrialsMetadata"
    assert (metadata["study"], metadata["clientId"], metadata["suggestionCount"]) == (
        name,
        "worker",
        6,
    )
    response = operation["response"]
    assert response["@type"] == TYPES + "SuggestTrialsResponse"
    assert response["studyState"] == "ACTIVE" and response["startTime"] <= response["endTime"]
    assert [t["name"] for t in response["trials"]] == [f"{name}/trials/{n}" for n in range(1, 7)]
    for trial in response["trials"]:
        assert trial["state"] == "ACTIVE" and trial["clientId"] == "worker"
        got = values(trial)
        assert 0.0001 <= got["learning_rate"] <= 0.1
        assert got["layers"] in {"1", "2", "3", "4"}  # int64: a string
        assert got["batch_size"] in {16, 32, 64}
        assert ("momentum" in got) == (got["optimizer"] == "sgd")
        assert got.get("momentum", 0.0) in {0.0, 0.5, 0.9}

    # The operation is stored under its location; cancelling a done one changes nothing.
    operations = ml.projects().locations().operations()
    assert operations.get(name=operation["name"]).execute() == operation
    assert operations.cancel(name=operation["name"]).execute() == {}
    refused(operations.get(name=f"{parent}/operations/nosuch-1"), "NOT_FOUND", 404)

    # A client-made trial is checked against the space, the conditional child included.
    made = trials(ml).create(
        parent=name,
        body={
            "parameters": [
                {"parameter": "learning_rate", "floatValue": 0.01},
                {"parameter": "layers", "intValue": "2"},
                {"parameter": "optimizer", "stringValue": "sgd"},
                {"parameter": "momentum", "floatValue": 0.0},
                {"parameter": "batch_size", "floatValue": 32},
            ]
        },
    )
    requested = made.execute()
    assert requested["state"] == "REQUESTED" and requested["name"] == f"{name}/trials/7"
    assert {"parameter": "momentum", "floatValue": 0} in requested["parameters"]
    # A REQUESTED trial is handed out by the next suggestion, before any new one.
    (handed,) = suggested(ml, name, 1, client="other")
    assert handed["name"] == requested["name"]
    assert (handed["state"], handed["clientId"]) == ("ACTIVE", "other")
    listed = trials(ml).list(parent=name).execute()["trials"]
    assert [t["name"].rsplit("/", 1)[1] for t in listed] == [str(n) for n in range(1, 8)]


def test_suggest_measure_complete_loop_finds_the_best_trial(ml: Any, parent: str) -> None:
    name = new_study(ml, parent, one_double(algorithm="GAUSSIAN_PROCESS_BANDIT"))
    scores: dict[str, float] = {}
    for _ in range(8):
        (trial,) = suggested(ml, name, 1)
        x = values(trial)["x"]
        score = -((x - 0.5) ** 2)
        for step in (1, 2):
            measured = (
                trials(ml)
                .addMeasurement(
                    name=trial["name"], body={"measurement": measurement(step, score=score / step)}
                )
                .execute()
            )
        assert len(measured["measurements"]) == 2
        assert measured["measurements"][0]["elapsedTime"].endswith("s")
        done = trials(ml).complete(name=trial["name"], body={}).execute()
        # Without a final measurement, the latest one is taken (as Vizier does).
        assert done["state"] == "COMPLETED" and done["endTime"]
        assert done["finalMeasurement"] == measured["measurements"][-1]
        scores[trial["name"]] = score / 2
    assert len(scores) == 8
    optimal = trials(ml).listOptimalTrials(parent=name, body={}).execute()["trials"]
    best = max(scores.values())
    assert [t["name"] for t in optimal] == [n for n, s in scores.items() if s == best]
    refused(trials(ml).complete(name=optimal[0]["name"], body={}), "FAILED_PRECONDITION", 400)
    refused(
        trials(ml).addMeasurement(
            name=optimal[0]["name"], body={"measurement": measurement(3, score=1.0)}
        ),
        "FAILED_PRECONDITION",
        400,
    )


def test_a_client_with_active_trials_gets_them_back(ml: Any, parent: str) -> None:
    name = new_study(ml, parent, one_double(algorithm="RANDOM_SEARCH"))
    first = suggested(ml, name, 2, client="a")
    assert [t["name"] for t in suggested(ml, name, 2, client="a")] == [t["name"] for t in first]
    other = suggested(ml, name, 1, client="b")
    assert other[0]["name"] == f"{name}/trials/3"
    trials(ml).complete(
        name=first[0]["name"], body={"finalMeasurement": measurement(1, score=0.5)}
    ).execute()
    again = suggested(ml, name, 2, client="a")
    assert [t["name"] for t in again] == [first[1]["name"], f"{name}/trials/4"]


def test_concurrent_suggestions_get_distinct_ids(ml: Any, parent: str, cairn_server: Any) -> None:
    name = new_study(ml, parent, one_double(algorithm="RANDOM_SEARCH"))
    headers = {**cairn_server.headers(), "Content-Type": "application/json"}

    def ask(index: int) -> list[str]:
        response = httpx.post(
            f"{cairn_server.url}/v1/{name}/trials:suggest",
            json={"suggestionCount": 2, "clientId": f"client{index}"},
            headers=headers,
            timeout=60,
        )
        assert response.status_code == 200, response.text
        return [t["name"].rsplit("/", 1)[1] for t in response.json()["response"]["trials"]]

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(ask, range(6)))
    ids = [trial_id for answer in answers for trial_id in answer]
    assert sorted(ids, key=int) == [str(n) for n in range(1, 13)]


def test_infeasible_completion_and_stop(ml: Any, parent: str) -> None:
    name = new_study(ml, parent, one_double(algorithm="RANDOM_SEARCH"))
    doomed, stopped = suggested(ml, name, 2)
    violated = violated_field(
        trials(ml).complete(name=doomed["name"], body={"infeasibleReason": "diverged"})
    )
    assert violated == "infeasible_reason"
    done = (
        trials(ml)
        .complete(
            name=doomed["name"],
            body={
                "trialInfeasible": True,
                "infeasibleReason": "loss became NaN",
                "finalMeasurement": measurement(1, score=9.0),
            },
        )
        .execute()
    )
    assert done["state"] == "COMPLETED" and done["trialInfeasible"] is True
    assert done["infeasibleReason"] == "loss became NaN" and "finalMeasurement" not in done
    assert trials(ml).listOptimalTrials(parent=name, body={}).execute() == {}

    assert trials(ml).stop(name=stopped["name"], body={}).execute()["state"] == "STOPPING"
    assert trials(ml).get(name=stopped["name"]).execute()["state"] == "STOPPING"
    refused(
        trials(ml).addMeasurement(
            name=stopped["name"], body={"measurement": measurement(1, score=1.0)}
        ),
        "FAILED_PRECONDITION",
        400,
    )
    assert violated_field(trials(ml).complete(name=stopped["name"], body={})) == "final_measurement"
    finished = trials(ml).complete(
        name=stopped["name"], body={"finalMeasurement": measurement(4, score=0.25)}
    )
    assert finished.execute()["state"] == "COMPLETED"
    refused(trials(ml).stop(name=stopped["name"], body={}), "FAILED_PRECONDITION", 400)
    (optimal,) = trials(ml).listOptimalTrials(parent=name, body={}).execute()["trials"]
    assert optimal["name"] == stopped["name"]


def test_early_stopping_follows_the_median_rule(ml: Any, parent: str) -> None:
    config = one_double(automatedStoppingConfig={"medianAutomatedStoppingConfig": {}})
    name = new_study(ml, parent, config)
    for index, x in enumerate((-1.0, -0.5, 0.0, 0.5)):
        base = 0.7 + 0.02 * index
        completed_trial(ml, name, x, [base, base + 0.05, base + 0.1, base + 0.12, base + 0.15])

    def running(curve: list[float]) -> dict[str, Any]:
        trial = trials(ml).create(
            parent=name,
            body={"state": "ACTIVE", "parameters": [{"parameter": "x", "floatValue": 1.0}]},
        )
        made: dict[str, Any] = trial.execute()
        assert made["state"] == "ACTIVE"
        for step, value in enumerate(curve):
            trials(ml).addMeasurement(
                name=made["name"], body={"measurement": measurement(step + 1, score=value)}
            ).execute()
        return made

    def check(trial: dict[str, Any]) -> dict[str, Any]:
        operation: dict[str, Any] = (
            trials(ml).checkEarlyStoppingState(name=trial["name"], body={}).execute()
        )
        assert operation["done"] is True
        assert operation["name"].startswith(f"{parent}/operations/")
        assert operation["metadata"]["@type"] == TYPES + "CheckTrialEarlyStoppingStateMetatdata"
        assert operation["metadata"]["trial"] == trial["name"]
        assert operation["response"]["@type"] == TYPES + "CheckTrialEarlyStoppingStateResponse"
        return operation

    poor = running([0.05, 0.06, 0.07])
    assert check(poor)["response"]["shouldStop"] is True
    assert trials(ml).get(name=poor["name"]).execute()["state"] == "STOPPING"
    good = running([0.9, 0.95, 0.97])
    assert "shouldStop" not in check(good)["response"]
    assert trials(ml).get(name=good["name"]).execute()["state"] == "ACTIVE"

    # Without automatedStoppingConfig the answer is always "go on".
    plain = new_study(ml, parent, one_double())
    (trial,) = suggested(ml, plain, 1)
    trials(ml).addMeasurement(
        name=trial["name"], body={"measurement": measurement(1, score=-100.0)}
    ).execute()
    response = trials(ml).checkEarlyStoppingState(name=trial["name"], body={}).execute()
    assert "shouldStop" not in response["response"]


def test_multi_metric_studies_return_the_pareto_front(ml: Any, parent: str) -> None:
    config = {
        "metrics": [
            {"metric": "accuracy", "goal": "MAXIMIZE"},
            {"metric": "latency", "goal": "MINIMIZE"},
        ],
        "parameters": [
            {"parameter": "x", "type": "DOUBLE", "doubleValueSpec": {"minValue": 0, "maxValue": 1}}
        ],
    }
    name = new_study(ml, parent, config)
    points = [(0.9, 10.0), (0.8, 5.0), (0.85, 20.0), (0.7, 5.0), (0.95, 30.0), (0.8, 5.0)]
    made = []
    for index, (accuracy, latency) in enumerate(points):
        body = {
            "parameters": [{"parameter": "x", "floatValue": index / 10}],
            "finalMeasurement": measurement(1, accuracy=accuracy, latency=latency),
        }
        made.append(trials(ml).create(parent=name, body=body).execute()["name"])
    # Every metric must be reported in a final measurement.
    partial = trials(ml).create(
        parent=name,
        body={
            "parameters": [{"parameter": "x", "floatValue": 0.5}],
            "finalMeasurement": measurement(1, accuracy=1.0),
        },
    )
    assert violated_field(partial) == "trial.final_measurement.metrics"
    optimal = trials(ml).listOptimalTrials(parent=name, body={}).execute()["trials"]
    assert [t["name"] for t in optimal] == [made[0], made[1], made[4], made[5]]
    # Suggestions scalarise the metrics (one random Chebyshev weighting per suggestion).
    fresh = suggested(ml, name, 3)
    assert len(fresh) == 3 and all(0 <= values(t)["x"] <= 1 for t in fresh)


def test_an_exhausted_grid_completes_the_study(ml: Any, parent: str) -> None:
    config = {
        "algorithm": "GRID_SEARCH",
        "metrics": [{"metric": "score"}],
        "parameters": [
            {
                "parameter": "n",
                "type": "INTEGER",
                "integerValueSpec": {"minValue": 1, "maxValue": 2},
            },
            {
                "parameter": "c",
                "type": "CATEGORICAL",
                "categoricalValueSpec": {"values": ["a", "b"]},
            },
        ],
    }
    name = new_study(ml, parent, config)
    first = suggested(ml, name, 3, client="one")
    last = suggest(ml, name, 3, client="two")["response"]
    assert len(last["trials"]) == 1 and last["studyState"] == "COMPLETED"
    grid = {(values(t)["n"], values(t)["c"]) for t in [*first, *last["trials"]]}
    assert grid == {("1", "a"), ("1", "b"), ("2", "a"), ("2", "b")}
    after = suggest(ml, name, 1, client="three")["response"]
    assert "trials" not in after and after["studyState"] == "COMPLETED"
    assert studies(ml).get(name=name).execute()["state"] == "COMPLETED"


def test_delete_removes_the_study_and_its_trials(ml: Any, parent: str) -> None:
    name = new_study(ml, parent, one_double())
    created = trials(ml).create(
        parent=name, body={"state": "ACTIVE", "parameters": [{"parameter": "x", "floatValue": 0}]}
    )
    first = created.execute()["name"]
    (second,) = suggested(ml, name, 1)
    assert second["name"] == f"{name}/trials/2"
    assert trials(ml).delete(name=first).execute() == {}
    refused(trials(ml).get(name=first), "NOT_FOUND", 404)
    refused(trials(ml).delete(name=first), "NOT_FOUND", 404)
    # Ids are never reused, even after a delete.
    assert suggested(ml, name, 1, client="later")[0]["name"] == f"{name}/trials/3"
    assert studies(ml).delete(name=name).execute() == {}
    refused(studies(ml).get(name=name), "NOT_FOUND", 404)
    refused(trials(ml).get(name=second["name"]), "NOT_FOUND", 404)
    refused(trials(ml).list(parent=name), "NOT_FOUND", 404)
    refused(studies(ml).delete(name=name), "NOT_FOUND", 404)
    # The id is free again, and the new study's trials start from 1.
    study_id = name.rsplit("/", 1)[1]
    studies(ml).create(
        parent=parent, studyId=study_id, body={"studyConfig": one_double()}
    ).execute()
    assert suggested(ml, name, 1)[0]["name"] == f"{name}/trials/1"


# ----- bad requests -------------------------------------------------------------------------------


def spec(**fields: Any) -> dict[str, Any]:
    return {"parameter": "p", **fields}


DOUBLE = {"type": "DOUBLE", "doubleValueSpec": {"minValue": 0, "maxValue": 1}}
CATEGORICAL = {"type": "CATEGORICAL", "categoricalValueSpec": {"values": ["a", "b"]}}
ROOT = "study.study_config"


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"metrics": [{"metric": "m"}]}, f"{ROOT}.parameters"),
        ({"parameters": [spec(**DOUBLE)], "metrics": []}, f"{ROOT}.metrics"),
        (
            {"parameters": [spec(**DOUBLE)], "metrics": [{"goal": "MINIMIZE"}]},
            f"{ROOT}.metrics[0].metric",
        ),
        (
            {"parameters": [spec(**DOUBLE)], "metrics": [{"metric": "m"}, {"metric": "m"}]},
            f"{ROOT}.metrics[1].metric",
        ),
        ({"parameters": [spec(**DOUBLE), spec(**CATEGORICAL)]}, f"{ROOT}.parameters[1].parameter"),
        ({"parameters": [spec(type="DOUBLE")]}, f"{ROOT}.parameters[0].double_value_spec"),
        (
            {"parameters": [spec(type="DOUBLE", doubleValueSpec={"minValue": 2, "maxValue": 1})]},
            f"{ROOT}.parameters[0].double_value_spec.max_value",
        ),
        (
            {"parameters": [spec(**DOUBLE, scaleType="UNIT_LOG_SCALE")]},
            f"{ROOT}.parameters[0].scale_type",
        ),
        (
            {"parameters": [spec(type="CATEGORICAL", categoricalValueSpec={"values": []})]},
            f"{ROOT}.parameters[0].categorical_value_spec.values",
        ),
        (
            {"parameters": [spec(type="DISCRETE", discreteValueSpec={"values": [1, 3, 2]})]},
            f"{ROOT}.parameters[0].discrete_value_spec.values",
        ),
        (
            {"parameters": [spec(type="INTEGER", integerValueSpec={"minValue": "x"})]},
            f"{ROOT}.parameters[0].integer_value_spec.min_value",
        ),
        ({"parameters": [spec(type="UNKNOWN")]}, f"{ROOT}.parameters[0].type"),
        ({"parameters": [spec()]}, f"{ROOT}.parameters[0].type"),
        (
            {
                "parameters": [
                    spec(
                        **CATEGORICAL,
                        childParameterSpecs=[
                            {
                                **DOUBLE,
                                "parameter": "c",
                                "parentCategoricalValues": {"values": ["z"]},
                            }
                        ],
                    )
                ]
            },
            f"{ROOT}.parameters[0].child_parameter_specs[0].parent_categorical_values.values[0]",
        ),
        (
            {
                "parameters": [
                    spec(**CATEGORICAL, childParameterSpecs=[{**DOUBLE, "parameter": "c"}])
                ]
            },
            f"{ROOT}.parameters[0].child_parameter_specs[0].parent_categorical_values",
        ),
        ({"parameters": [spec(**DOUBLE)], "algorithm": "HILL_CLIMBING"}, f"{ROOT}.algorithm"),
        (
            {"parameters": [spec(**DOUBLE)], "algorithm": "GRID_SEARCH"},
            f"{ROOT}.parameters[0].type",
        ),
        ({"parameters": [spec(**DOUBLE)], "extra": 1}, f"{ROOT}.extra"),
    ],
)
def test_bad_study_configs_name_the_field(
    ml: Any, parent: str, config: dict[str, Any], field: str
) -> None:
    config = {"metrics": [{"metric": "m"}], **config}
    call = studies(ml).create(parent=parent, studyId=unique("bad"), body={"studyConfig": config})
    assert violated_field(call) == field


def test_bad_requests_get_google_errors(ml: Any, parent: str) -> None:
    good = {"studyConfig": one_double()}
    assert violated_field(studies(ml).create(parent=parent, body=good)) == "study_id"
    assert violated_field(studies(ml).create(parent=parent, studyId="no-dash", body=good)) == (
        "study_id"
    )
    assert violated_field(studies(ml).create(parent=parent, studyId="s", body={})) == (
        "study.study_config"
    )
    name = new_study(ml, parent, one_double())
    study_id = name.rsplit("/", 1)[1]
    refused(studies(ml).create(parent=parent, studyId=study_id, body=good), "ALREADY_EXISTS", 409)
    for body, field in [
        ({"clientId": "c"}, "suggestion_count"),
        ({"clientId": "c", "suggestionCount": 1000}, "suggestion_count"),
        ({"suggestionCount": 1}, "client_id"),
        ({"clientId": "c", "suggestionCount": "many"}, "suggestion_count"),
        ({"clientId": "c", "suggestionCount": 1, "x": 1}, "x"),
    ]:
        assert violated_field(trials(ml).suggest(parent=name, body=body)) == field
    for parameters, field in [
        ([], "trial.parameters"),
        ([{"parameter": "x", "floatValue": 3}], "trial.parameters[0].float_value"),
        ([{"parameter": "x", "stringValue": "3"}], "trial.parameters[0]"),
        ([{"parameter": "x"}], "trial.parameters[0]"),
        ([{"parameter": "y", "floatValue": 0}], "trial.parameters[0].parameter"),
        (
            [{"parameter": "x", "floatValue": 0}, {"parameter": "x", "floatValue": 1}],
            "trial.parameters[1].parameter",
        ),
    ]:
        created = trials(ml).create(parent=name, body={"parameters": parameters})
        assert violated_field(created) == field
    (trial,) = suggested(ml, name, 1)
    for body, field in [
        ({}, "measurement"),
        ({"measurement": {"metrics": [{"value": 1}]}}, "measurement.metrics[0].metric"),
        ({"measurement": {"stepCount": "-1"}}, "measurement.step_count"),
        ({"measurement": {"elapsedTime": "soon"}}, "measurement.elapsed_time"),
        (
            {"measurement": {"metrics": [{"metric": "s", "value": "NaN"}]}},
            "measurement.metrics[0].value",
        ),
    ]:
        assert violated_field(trials(ml).addMeasurement(name=trial["name"], body=body)) == field

    missing = f"{parent}/studies/nosuch_study"
    refused(studies(ml).get(name=missing), "NOT_FOUND", 404)
    refused(
        trials(ml).suggest(parent=missing, body={"clientId": "c", "suggestionCount": 1}),
        "NOT_FOUND",
        404,
    )
    refused(trials(ml).get(name=f"{name}/trials/99"), "NOT_FOUND", 404)
    refused(trials(ml).get(name=f"{name}/trials/not_a_number"), "NOT_FOUND", 404)
    refused(trials(ml).stop(name=f"{name}/trials/99", body={}), "NOT_FOUND", 404)
    elsewhere = parent.replace(LOCATION, "mars-north1")
    refused(studies(ml).list(parent=elsewhere), "NOT_FOUND", 404)


JUNK: list[Any] = [[], "text", 12, None, {"unknown": 1}, {"suggestionCount": [1]},
                   {"measurement": "x"}, {"finalMeasurement": {"metrics": "m"}},
                   {"parameters": [{"parameter": 5}]}, {"studyConfig": {"parameters": [[]]}},
                   {"trialInfeasible": "yes"}, {"state": "SOMETIMES"}]  # fmt: skip


def test_junk_bodies_get_google_errors(ml: Any, parent: str, cairn_server: Any) -> None:
    name = new_study(ml, parent, one_double())
    (trial,) = suggested(ml, name, 1)
    headers = {**cairn_server.headers(), "Content-Type": "application/json"}
    paths = [
        f"{parent}/studies?studyId={unique('junk')}",
        f"{name}/trials",
        f"{name}/trials:suggest",
        f"{name}/trials:listOptimalTrials",
        *(f"{trial['name']}:{verb}" for verb in ("addMeasurement", "complete", "stop")),
        f"{trial['name']}:checkEarlyStoppingState",
    ]
    for path in paths:
        for body in JUNK:
            response = httpx.post(
                f"{cairn_server.url}/v1/{path}", content=json.dumps(body), headers=headers
            )
            assert response.status_code < 500, (path, body, response.text)
            if response.status_code >= 400:
                assert {"code", "message", "status"} <= set(response.json()["error"])


def test_zero_values_survive_the_round_trip(ml: Any, parent: str) -> None:
    config = {
        "metrics": [{"metric": "loss", "goal": "MINIMIZE"}],
        "parameters": [
            {"parameter": "x", "type": "DOUBLE", "doubleValueSpec": {"maxValue": 1}},
            {"parameter": "n", "type": "INTEGER", "integerValueSpec": {"maxValue": "3"}},
        ],
    }
    name = new_study(ml, parent, config)
    body = {
        "parameters": [{"parameter": "x", "floatValue": 0}, {"parameter": "n", "intValue": "0"}],
        "finalMeasurement": {"metrics": [{"metric": "loss", "value": 0}]},
    }
    trial = trials(ml).create(parent=name, body=body).execute()
    assert values(trial) == {"x": 0, "n": "0"}
    (optimal,) = trials(ml).listOptimalTrials(parent=name, body={}).execute()["trials"]
    assert optimal["name"] == trial["name"]
    (next_trial,) = suggested(ml, name, 1)
    got = values(next_trial)
    assert 0 <= got["x"] <= 1 and not math.isnan(got["x"]) and got["n"] in {"0", "1", "2", "3"}
