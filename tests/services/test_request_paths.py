"""What storage a request may name: gs:// URIs, or server paths under an operator's roots."""

from __future__ import annotations

from pathlib import Path

import pytest

from cairn.domain.errors import ApiError, Code
from cairn.services.request_paths import RequestPaths

FIELD = "version.deployment_uri"


def refusal(check: object, value: str) -> str:
    with pytest.raises(ApiError) as raised:
        check(value, FIELD)  # type: ignore[operator]
    assert raised.value.code is Code.INVALID_ARGUMENT
    assert raised.value.field_violations[0].field == FIELD
    return raised.value.message


@pytest.mark.parametrize(
    "location",
    [
        "~",  # once copied a 4 GB home directory into a model
        "~/models/m",
        "/etc",
        "/tmp/../etc",
        "file:///etc",
        "file:/etc",
        "file://host/etc",
        "models/m",  # relative to the server's working directory
        "",
        "/etc\x00",
        "~nosuchuser/x",
    ],
)
def test_server_paths_are_refused_without_local_roots(location: str) -> None:
    refusal(RequestPaths().check_location, location)


@pytest.mark.parametrize("location", ["gs://bucket/model/", "gs://bucket/pkg.tar.gz", "s3://bkt/m"])
def test_bucket_uris_pass(location: str) -> None:
    RequestPaths().check_location(location, FIELD)


def test_bucket_uris_leaving_their_bucket_are_refused() -> None:
    assert "'..'" in refusal(RequestPaths().check_location, "gs://bucket/a/../../x")


def test_paths_under_a_local_root_pass_and_nothing_leads_out(tmp_path: Path) -> None:
    root = tmp_path / "shared"
    (root / "models").mkdir(parents=True)
    outside = tmp_path / "private"
    outside.mkdir()
    (root / "escape").symlink_to(outside)
    paths = RequestPaths([root])
    paths.check_location(str(root / "models"), FIELD)
    paths.check_location(f"file://{root}/models", FIELD)
    paths.check_location(str(root / "not-yet-there"), FIELD)
    refusal(paths.check_location, str(outside))
    refusal(paths.check_location, str(root / "models" / ".." / ".." / "private"))
    refusal(paths.check_location, str(root / "escape"))  # a symlink out of the root
    refusal(paths.check_location, str(root) + "-sibling")


def test_a_symlinked_root_is_resolved(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    paths = RequestPaths([tmp_path / "link"])
    paths.check_location(str(real / "m"), FIELD)
    paths.check_location(str(tmp_path / "link" / "m"), FIELD)


@pytest.mark.parametrize(
    "argument",
    ["/etc/passwd", "--data=/etc", "-d=~/secrets", "~", "file:///etc/shadow", "--out=file:///x"],
)
def test_trainer_arguments_naming_server_paths_are_refused(argument: str) -> None:
    refusal(RequestPaths().check_trainer_arg, argument)


@pytest.mark.parametrize("argument", ["gs://b/../x", "--data=gs://bucket/a/../../x", "gs://B!/x"])
def test_trainer_arguments_with_unsafe_bucket_uris_are_refused(argument: str) -> None:
    refusal(RequestPaths().check_trainer_arg, argument)


@pytest.mark.parametrize(
    "argument",
    [
        "--epochs=3",
        "3",
        "-1",
        "--data=gs://bucket/train.csv",
        "gs://bucket/",
        "relative/path",
        "a=/b",
    ],
)
def test_other_trainer_arguments_are_the_trainers_business(argument: str) -> None:
    RequestPaths().check_trainer_arg(argument, FIELD)


def test_trainer_arguments_under_a_local_root_pass(tmp_path: Path) -> None:
    paths = RequestPaths([tmp_path])
    paths.check_trainer_arg(f"--data={tmp_path}/train.csv", FIELD)
    paths.check_trainer_arg(str(tmp_path / "out"), FIELD)
