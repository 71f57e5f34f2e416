"""Uploads into local buckets, in the shape of Cloud Storage's JSON API media upload.

The CLI uses it to stage trainer packages and model directories on the server's
storage, so a client never needs to share the server's home directory. The body streams
to a temporary file and is then moved into the bucket, so memory stays flat and a broken
upload never leaves a half-written object.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from cairn.api.gate import UPLOAD_BODY
from cairn.api.http import Call, Reply, Router, in_thread
from cairn.api.resources import billed_project, needs
from cairn.domain.errors import invalid_field
from cairn.services.platform import Platform
from cairn.storage.os_errors import disk_errors_reported

MAX_UPLOAD_BYTES = 2 * 1024 * 1024 * 1024


def register(router: Router, platform: Platform, *, spool_dir: Path) -> None:
    storage = platform.storage

    async def upload(call: Call) -> Reply:
        name = call.arg("name")
        if not name or name.endswith("/"):
            raise invalid_field("name", "Name the object with ?name=PATH (a file, not a folder).")
        if call.arg("uploadType") not in (None, "media"):
            raise invalid_field("uploadType", "Only uploadType=media is supported.")
        bucket = call.params["bucket"]
        uri = f"gs://{bucket}/{name}"
        billed = call.arg("userProject")
        if billed:  # without one, the route needed the permission instance-wide
            owner = await in_thread(platform.projects.bucket_project, bucket, billed)
            if owner != billed:
                await in_thread(
                    platform.access.check,
                    call.caller,
                    "storage.objects.create",
                    f"projects/{owner}",
                )
        # Refuse a name that cannot be stored before receiving a body that may be large.
        await in_thread(storage.object_destination, uri)
        with disk_errors_reported("the server's upload spool"):
            spool_dir.mkdir(parents=True, exist_ok=True)
            handle, spooled = tempfile.mkstemp(dir=spool_dir, prefix="upload-")
        size = 0
        try:
            with (
                disk_errors_reported("the server's upload spool"),
                os.fdopen(handle, "wb") as spool,
            ):
                async for chunk in call.chunks(MAX_UPLOAD_BYTES):
                    spool.write(chunk)
                    size += len(chunk)
            await in_thread(storage.put_file, Path(spooled), uri)
        finally:
            Path(spooled).unlink(missing_ok=True)
        return Reply.json(
            {"kind": "storage#object", "bucket": bucket, "name": name, "size": str(size)}
        )

    router.add(
        "POST",
        "/upload/storage/v1/b/{bucket}/o",
        upload,
        needs("storage.objects.create", billed_project, body_type=UPLOAD_BODY),
    )
