"""Put local files into a bucket before a job or version refers to them by gs:// URI.

Training packages go where gcloud puts them, `gs://STAGING/JOB/<sha256>/<basename>` (or
`<job-dir>/packages/<sha256>/<basename>` without a staging bucket), so the same content is
staged once per job and the URI says which content it is. Uploads go through the server's
Cloud Storage media-upload endpoint, so the CLI never needs to see the server's disk.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

from cairn.client.client import CairnClient
from cairn.domain.errors import invalid_field

Progress = Callable[[str], None]


def split_gs_uri(uri: str, flag: str) -> tuple[str, str]:
    """`gs://bucket/a/b` -> (`bucket`, `a/b`); INVALID_ARGUMENT naming `flag` otherwise."""
    if not uri.startswith("gs://") or len(uri) <= len("gs://"):
        raise invalid_field(flag, f"'{uri}' is not a gs://BUCKET[/PATH] URI.")
    bucket, _, path = uri[len("gs://") :].partition("/")
    if not bucket:
        raise invalid_field(flag, f"'{uri}' names no bucket.")
    return bucket, path.strip("/")


def content_digest(files: Sequence[Path]) -> str:
    """sha256 over the files' bytes in the given order (what the staging path is keyed by)."""
    digest = hashlib.sha256()
    for path in files:
        with path.open("rb") as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def package_destination(job_id: str, staging_bucket: str | None, job_dir: str | None) -> str:
    """The gs:// folder (without digest) that a job's local packages are staged under."""
    if staging_bucket:
        bucket, path = split_gs_uri(staging_bucket, "--staging-bucket")
        return _join("gs://" + bucket, path, job_id)
    if job_dir and job_dir.startswith("gs://"):
        bucket, path = split_gs_uri(job_dir, "--job-dir")
        return _join("gs://" + bucket, path, "packages")
    raise invalid_field(
        "--staging-bucket",
        "Local packages need somewhere to be uploaded: add --staging-bucket gs://BUCKET "
        "(or give a gs:// --job-dir).",
    )


def stage_packages(
    client: CairnClient,
    files: Sequence[Path],
    destination: str,
    progress: Progress | None = None,
) -> list[str]:
    """Upload `files` under `destination/<sha256>/` and return their gs:// URIs."""
    names = [path.name for path in files]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise invalid_field(
            "--packages",
            f"Two packages share the file name {', '.join(duplicates)}; rename one of them.",
        )
    folder = _join(destination, content_digest(files))
    return [_upload(client, path, _join(folder, path.name), progress) for path in files]


def stage_directory(
    client: CairnClient, directory: Path, destination: str, progress: Progress | None = None
) -> str:
    """Upload a directory tree under `destination/<sha256>/`; return that gs:// folder."""
    root = directory.expanduser().resolve()
    if not root.is_dir():
        raise invalid_field("--origin", f"{directory} is not a directory.")
    files = sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    if not files:
        raise invalid_field("--origin", f"{directory} holds no files to deploy.")
    folder = _join(destination, content_digest(files)[:32])
    for path in files:
        _upload(client, path, _join(folder, path.relative_to(root).as_posix()), progress)
    return folder + "/"


def _upload(client: CairnClient, path: Path, uri: str, progress: Progress | None) -> str:
    bucket, name = split_gs_uri(uri, "destination")
    if progress is not None:
        progress(f"Uploading {path.name} to {uri}")
    with path.open("rb") as stream:
        client.upload_object(bucket, name, stream.read())
    return uri


def _join(*parts: str) -> str:
    return "/".join(
        part.strip("/") if i else part.rstrip("/") for i, part in enumerate(parts) if part
    )
