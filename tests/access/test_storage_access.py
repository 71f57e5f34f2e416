"""Cloud Storage's JSON API: a credential reaches the buckets of its projects, no others."""

from __future__ import annotations

from typing import Any

import httpx
from tests.remote import unique


def bucket_name(prefix: str) -> str:
    return unique(prefix).replace("_", "-").lower()


def project_name(prefix: str) -> str:
    return unique(prefix).replace("_", "-")


def test_a_project_member_reaches_only_its_projects_buckets(
    cairn_server: Any, principal_with: Any
) -> None:
    project, other = project_name("mine"), project_name("theirs")
    headers = cairn_server.headers()
    mine, theirs = bucket_name("mine"), bucket_name("theirs")
    for owner, bucket in ((project, mine), (other, theirs)):
        response = httpx.post(
            f"{cairn_server.url}/storage/v1/b",
            params={"project": owner},
            json={"name": bucket},
            headers=headers,
        )
        assert response.status_code == 200, response.text
    editor = {"Authorization": principal_with(project, "roles/editor")["Authorization"]}
    upload = f"{cairn_server.url}/upload/storage/v1/b/%s/o"
    body = {"content": b"x", "params": {"uploadType": "media", "name": "f.txt"}}
    ok = httpx.post(
        upload % mine,
        headers={**editor, "Content-Type": "text/csv"},
        **body,  # type: ignore[arg-type]
    )
    assert ok.status_code == 200, ok.text
    refused = httpx.post(
        upload % theirs,
        headers={**editor, "Content-Type": "text/csv"},
        **body,  # type: ignore[arg-type]
    )
    assert refused.status_code == 403
    # Billing the call to one's own project opens nothing in another project's bucket.
    billed = httpx.post(
        upload % theirs,
        headers={**editor, "Content-Type": "text/csv"},
        content=b"x",
        params={"uploadType": "media", "name": "f.txt", "userProject": project},
    )
    assert billed.status_code == 403
    listed = httpx.get(
        f"{cairn_server.url}/storage/v1/b", params={"project": project}, headers=editor
    )
    assert [b["name"] for b in listed.json()["items"]] == [mine]
    assert (
        httpx.get(f"{cairn_server.url}/storage/v1/b/{theirs}/o", headers=editor).status_code == 403
    )


def test_a_bucket_made_on_the_servers_disk_is_no_projects_to_take(
    cairn_server: Any, principal_with: Any
) -> None:
    """`cairn storage`, `make demo` and jobs make buckets on disk that no project claimed:
    naming one's own project as `userProject` must not open them, nor let a write claim
    them; an empty bucket may still be claimed by the first project that writes into it."""
    project = project_name("mine")
    held, empty = bucket_name("held"), bucket_name("empty")
    (cairn_server.home / "storage" / held).mkdir(parents=True)
    (cairn_server.home / "storage" / held / "secret.txt").write_text("the owner's")
    (cairn_server.home / "storage" / empty).mkdir(parents=True)
    editor = {"Authorization": principal_with(project, "roles/editor")["Authorization"]}
    billed = {"userProject": project}
    objects = f"{cairn_server.url}/storage/v1/b/{held}/o"
    read = httpx.get(f"{objects}/secret.txt", params={"alt": "media", **billed}, headers=editor)
    listed = httpx.get(objects, params=billed, headers=editor)
    written = httpx.post(
        f"{cairn_server.url}/upload/storage/v1/b/{held}/o",
        params={"uploadType": "media", "name": "secret.txt", **billed},
        content=b"replaced",
        headers={**editor, "Content-Type": "text/plain"},
    )
    assert [read.status_code, listed.status_code, written.status_code] == [403, 403, 403]
    assert (cairn_server.home / "storage" / held / "secret.txt").read_text() == "the owner's"
    # The owner, who holds roles instance-wide, still reaches it.
    owner = httpx.get(
        f"{objects}/secret.txt", params={"alt": "media", **billed}, headers=cairn_server.headers()
    )
    assert owner.status_code == 200 and owner.text == "the owner's"
    claimed = httpx.post(
        f"{cairn_server.url}/upload/storage/v1/b/{empty}/o",
        params={"uploadType": "media", "name": "mine.txt", **billed},
        content=b"ours",
        headers={**editor, "Content-Type": "text/plain"},
    )
    assert claimed.status_code == 200, claimed.text
