"""Uploads into local buckets, in the shape of Cloud Storage's JSON API media upload.

The CLI uses it to stage trainer packages and model directories on the server's
storage, so a client never needs to share the server's home directory.
"""

from __future__ import annotations

from cairn.api.http import Call, Reply, Router, in_thread
from cairn.domain.errors import invalid_field
from cairn.services.platform import Platform

MAX_UPLOAD_BYTES = 2 * 1024 * 1024 * 1024


def register(router: Router, platform: Platform) -> None:
    storage = platform.storage

    async def upload(call: Call) -> Reply:
        name = call.arg("name")
        if not name:
            raise invalid_field("name", "Name the object with ?name=PATH.")
        if call.arg("uploadType") not in (None, "media"):
            raise invalid_field("uploadType", "Only uploadType=media is supported.")
        bucket = call.params["bucket"]
        data = await call.body(limit=MAX_UPLOAD_BYTES)
        uri = f"gs://{bucket}/{name}"
        await in_thread(storage.write_bytes, uri, data)
        return Reply.json(
            {"kind": "storage#object", "bucket": bucket, "name": name, "size": str(len(data))}
        )

    router.add("POST", "/upload/storage/v1/b/{bucket}/o", upload)
