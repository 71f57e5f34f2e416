"""CairnClient against a real loopback HTTP server with canned answers."""

from __future__ import annotations

import socket

import pytest
from tests.client.fake_ml import FAKE_TOKEN, FakeMl

from cairn.client import CairnClient
from cairn.domain.errors import ApiError, Code

P = "/v1/projects/proj"


def client_for(fake: FakeMl) -> CairnClient:
    return CairnClient(fake.url, "proj")


def test_list_jobs_follows_every_page(fake_ml: FakeMl) -> None:
    fake_ml.answer("GET", f"{P}/jobs", {"jobs": [{"jobId": "a"}], "nextPageToken": "t1"})
    fake_ml.answer("GET", f"{P}/jobs", {"jobs": [{"jobId": "b"}]})
    ids = [job["jobId"] for job in client_for(fake_ml).list_jobs(filter="state:FAILED")]
    assert ids == ["a", "b"]
    assert [r.query for r in fake_ml.requests] == [
        {"filter": "state:FAILED"},
        {"filter": "state:FAILED", "pageToken": "t1"},
    ]


def test_empty_list_body_means_no_items(fake_ml: FakeMl) -> None:
    fake_ml.answer("GET", f"{P}/models", {})
    assert list(client_for(fake_ml).list_models()) == []


def test_create_and_patch_send_bodies_and_masks(fake_ml: FakeMl) -> None:
    fake_ml.answer("POST", f"{P}/models", {"name": "projects/proj/models/m"})
    fake_ml.answer("PATCH", f"{P}/jobs/j", {"jobId": "j", "labels": {"a": "b"}})
    client = client_for(fake_ml)
    assert client.create_model({"name": "m"})["name"] == "projects/proj/models/m"
    client.patch_job("j", {"labels": {"a": "b"}}, "labels")
    create, patch = fake_ml.requests
    assert create.json() == {"name": "m"}
    assert (patch.method, patch.query, patch.json()) == (
        "PATCH",
        {"updateMask": "labels"},
        {"labels": {"a": "b"}},
    )


def test_google_error_body_becomes_api_error_with_violations(fake_ml: FakeMl) -> None:
    fake_ml.answer(
        "POST",
        f"{P}/models",
        {
            "error": {
                "code": 409,
                "message": "Field: model.name Error: A model with the same name already exists.",
                "status": "ALREADY_EXISTS",
                "details": [
                    {
                        "@type": "type.googleapis.com/google.rpc.BadRequest",
                        "fieldViolations": [
                            {"field": "model.name", "description": "already exists"}
                        ],
                    }
                ],
            }
        },
        status=409,
    )
    with pytest.raises(ApiError) as caught:
        client_for(fake_ml).create_model({"name": "m"})
    assert caught.value.code is Code.ALREADY_EXISTS
    assert caught.value.message.startswith("Field: model.name")
    assert [(v.field, v.description) for v in caught.value.field_violations] == [
        ("model.name", "already exists")
    ]


def test_failed_precondition_keeps_its_status_name_despite_http_400(fake_ml: FakeMl) -> None:
    body = {"error": {"code": 400, "message": "has versions", "status": "FAILED_PRECONDITION"}}
    fake_ml.answer("DELETE", f"{P}/models/m", body, status=400)
    with pytest.raises(ApiError) as caught:
        client_for(fake_ml).delete_model("m")
    assert caught.value.code is Code.FAILED_PRECONDITION


def test_predict_string_error_is_parsed(fake_ml: FakeMl) -> None:
    fake_ml.answer("POST", f"{P}/models/m:predict", {"error": "bad instance 2"}, status=400)
    with pytest.raises(ApiError) as caught:
        client_for(fake_ml).predict("projects/proj/models/m", {"instances": [[1]]})
    assert (caught.value.code, caught.value.message) == (Code.INVALID_ARGUMENT, "bad instance 2")
    assert fake_ml.requests[0].json() == {"instances": [[1]]}


def test_non_json_error_still_has_a_code(fake_ml: FakeMl) -> None:
    fake_ml.answer("GET", f"{P}/jobs/j", b"gateway down", status=503)
    with pytest.raises(ApiError) as caught:
        client_for(fake_ml).get_job("j")
    assert (caught.value.code, caught.value.message) == (Code.UNAVAILABLE, "gateway down")


def test_no_server_is_unavailable_with_a_next_step() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with pytest.raises(ApiError) as caught:
        CairnClient(url, "proj").get_config()
    assert caught.value.code is Code.UNAVAILABLE
    assert f"No Cairn server answers at {url}" in caught.value.message
    assert "cairn server" in caught.value.message


def test_wait_operation_polls_until_done(fake_ml: FakeMl) -> None:
    name = "projects/proj/operations/op1"
    fake_ml.answer("GET", f"/v1/{name}", {"name": name})
    fake_ml.answer("GET", f"/v1/{name}", {"name": name, "done": True, "response": {"x": 1}})
    seen: list[str] = []
    done = client_for(fake_ml).wait_operation(
        "op1", interval=0.01, on_poll=lambda op: seen.append(op["name"])
    )
    assert done["response"] == {"x": 1}
    assert seen == [name]


def test_wait_operation_raises_the_operation_error(fake_ml: FakeMl) -> None:
    name = "projects/proj/operations/op2"
    error = {"code": 9, "message": "model files missing"}
    fake_ml.answer("GET", f"/v1/{name}", {"name": name, "done": True, "error": error})
    with pytest.raises(ApiError) as caught:
        client_for(fake_ml).wait_operation(name, interval=0.01)
    assert (caught.value.code, caught.value.message) == (
        Code.FAILED_PRECONDITION,
        "model files missing",
    )


def test_upload_and_logs_extensions(fake_ml: FakeMl) -> None:
    fake_ml.answer("POST", "/upload/storage/v1/b/bkt/o", {"bucket": "bkt", "size": "3"})
    fake_ml.answer(
        "GET",
        "/cairn/v1/projects/proj/jobs/j/logs",
        {"entries": [{"taskName": "master-replica-0", "text": "hi"}], "cursor": "c2"},
    )
    client = client_for(fake_ml)
    client.upload_object("bkt", "dir/a b.tar.gz", b"abc")
    batch = client.read_job_logs("j", "c1")
    upload, logs = fake_ml.requests
    assert upload.query == {"uploadType": "media", "name": "dir/a b.tar.gz", "userProject": "proj"}
    assert upload.body == b"abc"
    assert upload.authorization == logs.authorization == f"Bearer {FAKE_TOKEN}"
    assert logs.query == {"cursor": "c1"}
    assert batch["cursor"] == "c2"


def test_version_and_operation_names_accept_ids_or_full_names() -> None:
    client = CairnClient("http://127.0.0.1:1", "proj")
    assert client.version_name("m", "v") == "projects/proj/models/m/versions/v"
    assert client.operation_name("op") == "projects/proj/operations/op"
    assert client.operation_name("projects/x/operations/op") == "projects/x/operations/op"
