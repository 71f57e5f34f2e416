"""Races and edge cases around versions and operations: never two winners, never stuck."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from tests.factories import sklearn_model_dir
from tests.remote import unique, upload_dir, wait_operation

P = "projects/edges"


def http(server: Any, method: str, path: str, **kwargs: Any) -> httpx.Response:
    kwargs["headers"] = {**server.headers(), **kwargs.get("headers", {})}
    return httpx.request(method, f"{server.url}/v1/{path}", timeout=60, **kwargs)


def ready_version(server: Any, ml: Any, tmp_path: Path) -> tuple[str, str]:
    model = unique("edge")
    http(server, "POST", f"{P}/models", json={"name": model})
    uri = upload_dir(
        server.url, sklearn_model_dir(tmp_path / model), "edges", model, headers=server.headers()
    )
    op = http(
        server, "POST", f"{P}/models/{model}/versions", json={"name": "v1", "deploymentUri": uri}
    ).json()
    assert "error" not in wait_operation(ml, op["name"])
    return model, uri


def test_cancelling_a_rescale_keeps_the_version_serving(
    cairn_server: Any, ml: Any, tmp_path: Path
) -> None:
    model, _ = ready_version(cairn_server, ml, tmp_path)
    op = http(
        cairn_server,
        "PATCH",
        f"{P}/models/{model}/versions/v1",
        params={"updateMask": "manualScaling.nodes"},
        json={"manualScaling": {"nodes": 2}},
    ).json()
    http(cairn_server, "POST", f"{op['name']}:cancel")
    wait_operation(ml, op["name"])
    version = http(cairn_server, "GET", f"{P}/models/{model}/versions/v1").json()
    assert version["state"] == "READY"
    assert version["isDefault"] is True
    answer = http(
        cairn_server,
        "POST",
        f"{P}/models/{model}:predict",
        json={"instances": [[3.0, 3.0, 0.0, 0.0]]},
    )
    assert answer.json() == {"predictions": [1]}


def test_patch_and_delete_racing_never_both_win(cairn_server: Any, ml: Any, tmp_path: Path) -> None:
    model, _ = ready_version(cairn_server, ml, tmp_path)
    path = f"{P}/models/{model}/versions/v1"
    with ThreadPoolExecutor(2) as pool:
        patch = pool.submit(
            http,
            cairn_server,
            "PATCH",
            path,
            params={"updateMask": "manualScaling.nodes"},
            json={"manualScaling": {"nodes": 2}},
        )
        delete = pool.submit(http, cairn_server, "DELETE", path)
        statuses = sorted([patch.result().status_code, delete.result().status_code])
    assert statuses == [200, 400], statuses  # one wins, the other is told the version is busy
    winner = patch.result() if patch.result().status_code == 200 else delete.result()
    assert "error" not in wait_operation(ml, winner.json()["name"])


def test_duplicate_version_create_records_no_operation(
    cairn_server: Any, ml: Any, tmp_path: Path
) -> None:
    model, uri = ready_version(cairn_server, ml, tmp_path)
    before = http(cairn_server, "GET", f"{P}/operations", params={"pageSize": 100}).json()
    again = http(
        cairn_server,
        "POST",
        f"{P}/models/{model}/versions",
        json={"name": "v1", "deploymentUri": uri},
    )
    assert again.status_code == 409
    after = http(cairn_server, "GET", f"{P}/operations", params={"pageSize": 100}).json()
    assert len(after.get("operations", [])) == len(before.get("operations", []))


def test_version_create_checks_its_inputs_before_answering(
    cairn_server: Any, ml: Any, tmp_path: Path
) -> None:
    model = unique("inputs")
    http(cairn_server, "POST", f"{P}/models", json={"name": model})
    missing = http(
        cairn_server,
        "POST",
        f"{P}/models/{model}/versions",
        json={"name": "v1", "deploymentUri": "gs://edges/nothing/here"},
    )
    assert missing.status_code == 400
    assert "not a directory" in missing.json()["error"]["message"]
    bad_bucket = http(
        cairn_server,
        "POST",
        f"{P}/models/{model}/versions",
        json={"name": "v1", "deploymentUri": "gs://BAD_bucket!/m"},
    )
    assert bad_bucket.status_code == 400
    uri = upload_dir(
        cairn_server.url,
        sklearn_model_dir(tmp_path / "m"),
        "edges",
        model,
        headers=cairn_server.headers(),
    )
    too_many = http(
        cairn_server,
        "POST",
        f"{P}/models/{model}/versions",
        json={"name": "v1", "deploymentUri": uri, "manualScaling": {"nodes": 1000}},
    )
    assert too_many.status_code == 400
    assert "At most" in too_many.json()["error"]["message"]


def test_model_patch_rejects_malformed_bodies(cairn_server: Any) -> None:
    model = unique("patchy")
    http(cairn_server, "POST", f"{P}/models", json={"name": model})
    for body in ([1], "x", {"defaultVersion": "v1"}):
        response = http(
            cairn_server,
            "PATCH",
            f"{P}/models/{model}",
            params={"updateMask": "description,defaultVersion.name"},
            json=body,
        )
        assert response.status_code == 400, (body, response.text)
        assert response.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_concurrent_model_patches_all_succeed_with_distinct_operations(cairn_server: Any) -> None:
    model = unique("busy")
    http(cairn_server, "POST", f"{P}/models", json={"name": model})
    with ThreadPoolExecutor(8) as pool:
        responses = list(
            pool.map(
                lambda i: http(
                    cairn_server,
                    "PATCH",
                    f"{P}/models/{model}",
                    params={"updateMask": "description"},
                    json={"description": f"d{i}"},
                ),
                range(16),
            )
        )
    assert [r.status_code for r in responses] == [200] * 16
    assert len({r.json()["name"] for r in responses}) == 16
