"""Cloud Storage's JSON API on Cairn's local buckets: what Google's own clients call.

`google-cloud-storage`, `gcsfs`, `googleapiclient.discovery.build('storage', 'v1')`,
Cairn's `gsutil` and the CLI's staging speak it unchanged: objects get (metadata, or
`alt=media` with Range), list (prefix, delimiter, pages), insert (media, multipart and
resumable uploads), delete, copy/rewrite; buckets get, list and insert.

Who may do what: Cairn's buckets have no IAM of their own. A bucket belongs to the
project that created or first wrote into it, and that project's policy decides (as a
bucket's project does on Google Cloud); a call may name the project instead with
`userProject`, as gsutil's `-u` does. A bucket no project has claimed is instance-wide:
only principals with the permission on the whole instance reach it.

Bodies stream to a spool file and are then moved into the bucket, so memory stays flat
and a broken upload never leaves a half-written object.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import mimetypes
import os
import re
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

import google_crc32c

from cairn.api.gate import UPLOAD_BODY, Access, authenticated
from cairn.api.http import Call, Reply, Router, in_thread
from cairn.api.resources import needs
from cairn.domain.errors import ApiError, Code, invalid_field
from cairn.domain.names import check_project
from cairn.iam.policy import INSTANCE
from cairn.services.access import Principal
from cairn.services.platform import Platform
from cairn.services.projects import project_number
from cairn.storage.listing import PARTIAL_PREFIX, Entry, children, stat, walk_files
from cairn.storage.os_errors import disk_errors_reported
from cairn.storage.uris import check_bucket_name

MAX_UPLOAD_BYTES = 2 * 1024 * 1024 * 1024
# A multipart upload carries metadata and data in one body, parsed in memory; clients
# switch to resumable uploads above 8 MiB (google-cloud-storage) or their block size.
MAX_MULTIPART_BYTES = 256 * 1024 * 1024
MAX_LIST_RESULTS = 1000
ABANDONED_SESSION_S = 7 * 24 * 3600
_CHUNK = 1024 * 1024
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_CONTENT_RANGE = re.compile(r"bytes (?:(\d+)-(\d+)|\*)/(\d+|\*)")
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")


def register(router: Router, platform: Platform, *, spool_dir: Path) -> None:
    api = _StorageApi(platform, spool_dir)
    api.register(router)


class _StorageApi:
    def __init__(self, platform: Platform, spool_dir: Path) -> None:
        self.platform = platform
        self.storage = platform.storage
        self.spool_dir = spool_dir
        self.sessions_dir = spool_dir / "resumable"
        # Claims are permanent, so a known owner is cached; the gate asks on every call.
        self._owners: dict[str, str] = {}
        self._upload_locks: dict[str, asyncio.Lock] = {}
        self._remove_abandoned_sessions()

    def _remove_abandoned_sessions(self) -> None:
        """Resumable uploads nobody finished within a week (Google keeps them a week too)."""
        cutoff = time.time() - ABANDONED_SESSION_S
        for leftover in self.sessions_dir.glob("*") if self.sessions_dir.is_dir() else []:
            with contextlib.suppress(OSError):
                if leftover.stat().st_mtime < cutoff:
                    leftover.unlink()

    # -- who may ---------------------------------------------------------------------------

    def bucket_resource(self, params: dict[str, str]) -> str:
        """Where a bucket's permissions are checked: `userProject`, else the bucket's own
        project, else the whole instance (a bucket no project has claimed). A name that
        is no bucket name is refused here, before any handler maps it onto a directory."""
        if "bucket" in params:
            check_bucket_name(params["bucket"], f"gs://{params['bucket']}")
        billed = params.get("userProject")
        if billed:
            return f"projects/{check_project(billed)}"
        owner = self._owner(params["bucket"]) if "bucket" in params else None
        return f"projects/{owner}" if owner else INSTANCE

    def _owner(self, bucket: str) -> str | None:
        owner = self._owners.get(bucket)
        if owner is None:
            owner = self.platform.projects.bucket_owner(bucket)
            if owner is not None:
                self._owners[bucket] = owner
        return owner

    def needs(self, permission: str, *, body_type: bytes | None = None) -> Access:
        if body_type is None:
            return needs(permission, self.bucket_resource)
        return needs(permission, self.bucket_resource, body_type=body_type)

    async def check_billed(self, call: Call, permission: str, bucket: str) -> None:
        """A call billed to `userProject` also needs the permission where the bucket belongs,
        so naming a project of one's own opens nothing: in the project that owns it, or, for
        a bucket no project owns that already holds objects (made on the server's disk by
        `cairn storage`, `make demo` or a job), instance-wide. Only an empty bucket may be
        claimed by the first project that writes into it."""
        billed = call.arg("userProject")
        if not billed:
            return
        owner = await in_thread(self._owner, bucket)
        if owner is None:
            if await in_thread(self._holds_objects, bucket):
                await in_thread(self.platform.access.check, call.caller, permission, INSTANCE)
        elif owner != billed:
            await in_thread(
                self.platform.access.check, call.caller, permission, f"projects/{owner}"
            )

    def _holds_objects(self, bucket: str) -> bool:
        root = self.storage.local_path(f"gs://{bucket}")
        try:
            return any(root.iterdir())
        except OSError:  # no such bucket (yet)
            return False

    async def claim(self, call: Call, bucket: str) -> None:
        """A write billed to a project claims a bucket no project owns yet."""
        billed = call.arg("userProject")
        if billed:
            await in_thread(self.platform.projects.bucket_project, bucket, billed)

    # -- routes ----------------------------------------------------------------------------

    def register(self, router: Router) -> None:
        objects = "/storage/v1/b/{bucket}/o"
        router.add("GET", objects, self.list_objects, self.needs("storage.objects.list"))
        router.add(
            "GET", objects + "/{object**}", self.get_object, self.needs("storage.objects.get")
        )
        router.add(
            "GET",
            "/download/storage/v1/b/{bucket}/o/{object**}",
            self.get_object,
            self.needs("storage.objects.get"),
        )
        router.add(
            "DELETE",
            objects + "/{object**}",
            self.delete_object,
            self.needs("storage.objects.delete"),
        )
        for verb in ("copyTo", "rewriteTo"):
            router.add(
                "POST",
                objects + "/{object**}/" + verb + "/b/{destination_bucket}/o/{destination**}",
                self.copy_object,
                self.needs("storage.objects.get"),
            )
        uploads = "/upload/storage/v1/b/{bucket}/o"
        router.add(
            "POST",
            uploads,
            self.upload,
            self.needs("storage.objects.create", body_type=UPLOAD_BODY),
        )
        router.add(
            "PUT",
            uploads,
            self.resume_upload,
            self.needs("storage.objects.create", body_type=UPLOAD_BODY),
        )
        router.add(
            "GET", "/storage/v1/b/{bucket}", self.get_bucket, self.needs("storage.buckets.get")
        )
        # The project is a query parameter here (`?project=`), checked in the handlers.
        router.add("GET", "/storage/v1/b", self.list_buckets, authenticated())
        router.add("POST", "/storage/v1/b", self.insert_bucket, authenticated())

    # -- objects ---------------------------------------------------------------------------

    async def get_object(self, call: Call) -> Reply:
        bucket, name = call.params["bucket"], call.params["object"]
        await self.check_billed(call, "storage.objects.get", bucket)
        entry = await in_thread(self._object_entry, bucket, name)
        if call.arg("alt") != "media" and not call.path.startswith("/download/"):
            return Reply.json(_object_resource(_base(call), bucket, name, entry))
        return await self._media(call, entry)

    async def _media(self, call: Call, entry: Entry) -> Reply:
        size = entry.size
        start, end = 0, size - 1
        status = 200
        headers: list[tuple[bytes, bytes]] = [(b"accept-ranges", b"bytes")]
        asked = call.headers.get(b"range")
        if asked is not None and size > 0:  # an empty object answers whole, as on GCS
            found = _RANGE.fullmatch(asked.decode("latin-1").strip())
            if found is None or found.group(1) == found.group(2) == "":
                raise ApiError(
                    Code.INVALID_ARGUMENT, f"Invalid Range header '{asked.decode('latin-1')}'."
                )
            first, last = found.group(1), found.group(2)
            if first == "":  # the last N bytes
                start, end = max(size - int(last), 0), size - 1
            else:
                start = int(first)
                end = min(int(last), size - 1) if last else size - 1
            if start >= size or start > end:
                message = (
                    f"The requested range {asked.decode('latin-1')} is not satisfiable for an "
                    f"object of {size} bytes."
                )
                # Google answers 416, which no Code maps to; the body keeps Google's shape.
                error = {"code": 416, "message": message, "status": "OUT_OF_RANGE"}
                return Reply.json({"error": error}, status=416)
            status = 206
            headers.append((b"content-range", f"bytes {start}-{end}/{size}".encode()))
        length = max(end - start + 1, 0)
        kind = mimetypes.guess_type(entry.location.path)[0] or "application/octet-stream"
        return Reply(
            status,
            b"",
            content_type=kind.encode(),
            headers=tuple(headers),
            stream=_read_range(await in_thread(self._open_inside, entry), start, length),
            length=length,
        )

    def _open_inside(self, entry: Entry) -> BinaryIO:
        """The object's file, opened so that it is surely inside the buckets.

        The path was checked when the object was looked up, but a job may write into a
        bucket and could swap the file for a link to a server file in between: the file
        is opened without following a final link, and what was opened is checked again.
        """
        try:
            fd = os.open(entry.location.local, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            raise ApiError(Code.NOT_FOUND, f"No such object: {entry.location.path}") from None
        opened = Path(os.readlink(f"/proc/self/fd/{fd}"))
        if not opened.is_relative_to(self.storage.root.resolve()):
            os.close(fd)
            raise ApiError(Code.NOT_FOUND, f"No such object: {entry.location.path}")
        return os.fdopen(fd, "rb")

    def _object_entry(self, bucket: str, name: str) -> Entry:
        location = self.storage.locate(_uri(bucket, name))
        entry = stat(location)
        if entry is None or entry.is_dir or location.local.name.startswith(PARTIAL_PREFIX):
            if not (self.storage.root / bucket).is_dir():
                raise _no_bucket(bucket)
            raise ApiError(Code.NOT_FOUND, f"No such object: {bucket}/{name}")
        return entry

    async def list_objects(self, call: Call) -> Reply:
        bucket = call.params["bucket"]
        await self.check_billed(call, "storage.objects.list", bucket)
        prefix = call.arg("prefix") or ""
        delimiter = call.arg("delimiter") or None
        if delimiter not in (None, "/"):
            raise invalid_field("delimiter", "Only '/' is supported as a delimiter.")
        limit = call.int_arg("maxResults", "maxResults") or MAX_LIST_RESULTS
        if limit < 1:
            raise invalid_field("maxResults", "maxResults must be positive.")
        limit = min(limit, MAX_LIST_RESULTS)
        after = _decode_page_token(call.arg("pageToken"))
        start_offset = call.arg("startOffset") or ""
        listed = await in_thread(self._listing, bucket, prefix, delimiter is not None)
        listed = [item for item in listed if item[0] > after and item[0] >= start_offset]
        page, rest = listed[:limit], listed[limit:]
        body: dict[str, Any] = {"kind": "storage#objects"}
        base = _base(call)
        items = [_object_resource(base, bucket, name, entry) for name, entry in page if entry]
        prefixes = [name for name, entry in page if entry is None]
        if items:
            body["items"] = items
        if prefixes:
            body["prefixes"] = prefixes
        if rest and page:
            body["nextPageToken"] = base64.urlsafe_b64encode(page[-1][0].encode()).decode()
        return Reply.json(body)

    def _listing(self, bucket: str, prefix: str, by_folder: bool) -> list[tuple[str, Entry | None]]:
        """(name, entry) in name order; a folder (with a delimiter) has no entry."""
        if not (self.storage.root / bucket).is_dir():
            raise _no_bucket(bucket)
        folder = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        try:
            base = self.storage.locate(_uri(bucket, folder))
        except ApiError:
            return []  # a prefix no object name can have ('..' and the like)
        found = stat(base)
        if found is None or not found.is_dir:
            return []
        bucket_path = self.storage.locate(f"gs://{bucket}/").path
        listed: list[tuple[str, Entry | None]] = []
        entries = children(base) if by_folder else walk_files(base)
        for entry in entries:
            name = entry.location.path[len(bucket_path) + 1 :]
            if entry.is_dir:
                name += "/"
            if not name.startswith(prefix):
                continue
            listed.append((name, None if entry.is_dir else entry))
        return sorted(listed, key=lambda item: item[0])

    async def delete_object(self, call: Call) -> Reply:
        bucket, name = call.params["bucket"], call.params["object"]
        await self.check_billed(call, "storage.objects.delete", bucket)
        await in_thread(self._delete, bucket, name)
        return Reply(204, b"")

    def _delete(self, bucket: str, name: str) -> None:
        entry = self._object_entry(bucket, name)
        location = entry.location
        with disk_errors_reported(location.display()):
            location.fs.rm_file(location.path)
        # Folders exist only through the objects in them, as on Cloud Storage.
        parent = location.local.parent
        while location.boundary is not None and parent != location.boundary:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    async def copy_object(self, call: Call) -> Reply:
        """copyTo and rewriteTo (done in one call: `done` is always true)."""
        bucket, name = call.params["bucket"], call.params["object"]
        target_bucket = call.params["destination_bucket"]
        target = call.params["destination"]
        await self.check_billed(call, "storage.objects.get", bucket)
        await in_thread(
            self.platform.access.check,
            call.caller,
            "storage.objects.create",
            self.bucket_resource({"bucket": target_bucket, **_billed(call)}),
        )
        await self.check_billed(call, "storage.objects.create", target_bucket)
        await call.body()  # optional metadata for the new object: not kept
        entry = await in_thread(self._object_entry, bucket, name)
        await in_thread(self.storage.put_file, entry.location.local, _uri(target_bucket, target))
        copied = await in_thread(self._object_entry, target_bucket, target)
        resource = _object_resource(_base(call), target_bucket, target, copied)
        if "/rewriteTo/b/" in call.path:
            size = str(copied.size)
            return Reply.json(
                {
                    "kind": "storage#rewriteResponse",
                    "totalBytesRewritten": size,
                    "objectSize": size,
                    "done": True,
                    "resource": resource,
                }
            )
        return Reply.json(resource)

    # -- uploads ---------------------------------------------------------------------------

    async def upload(self, call: Call) -> Reply:
        kind = call.arg("uploadType") or "media"
        if call.arg("upload_id") is not None:  # gcsfs sends a session's chunks with POST
            return await self.resume_upload(call)
        bucket = call.params["bucket"]
        await self.check_billed(call, "storage.objects.create", bucket)
        if kind == "media":
            name = _object_name(call.arg("name"))
            await in_thread(self.storage.object_destination, _uri(bucket, name))
            return await self._receive(call, bucket, name)
        if kind == "multipart":
            return await self._multipart(call, bucket)
        if kind == "resumable":
            return await self._start_resumable(call, bucket)
        raise invalid_field(
            "uploadType", f"uploadType '{kind}' is unknown; use media, multipart or resumable."
        )

    async def _receive(self, call: Call, bucket: str, name: str) -> Reply:
        spooled = self._spool_file()
        digests = _Digests()
        try:
            with disk_errors_reported("the server's upload spool"), open(spooled, "wb") as spool:
                async for chunk in call.chunks(MAX_UPLOAD_BYTES):
                    spool.write(chunk)
                    digests.update(chunk)
            return await self._store(call, spooled, bucket, name, digests)
        finally:
            spooled.unlink(missing_ok=True)

    async def _store(
        self, call: Call, spooled: Path, bucket: str, name: str, digests: _Digests
    ) -> Reply:
        await in_thread(self.storage.put_file, spooled, _uri(bucket, name))
        await self.claim(call, bucket)
        entry = await in_thread(self._object_entry, bucket, name)
        return Reply.json(_object_resource(_base(call), bucket, name, entry, digests))

    async def _multipart(self, call: Call, bucket: str) -> Reply:
        content_type = call.headers.get(b"content-type", b"").decode("latin-1")
        boundary = re.search(r'boundary="?([^";]+)"?', content_type)
        if not content_type.lower().startswith("multipart/related") or boundary is None:
            raise ApiError(
                Code.INVALID_ARGUMENT,
                "A multipart upload's Content-Type must be multipart/related with a boundary.",
            )
        body = await call.body(MAX_MULTIPART_BYTES)
        metadata, data = _split_multipart(body, boundary.group(1).encode("latin-1"))
        name = _object_name(call.arg("name") or metadata.get("name"))
        await in_thread(self.storage.object_destination, _uri(bucket, name))
        digests = _Digests()
        digests.update(data)
        _check_sent_digests(metadata, digests)
        spooled = self._spool_file()
        try:
            with disk_errors_reported("the server's upload spool"):
                spooled.write_bytes(data)
            return await self._store(call, spooled, bucket, name, digests)
        finally:
            spooled.unlink(missing_ok=True)

    async def _start_resumable(self, call: Call, bucket: str) -> Reply:
        raw = await call.body()
        metadata = {}
        if raw.strip():
            try:
                metadata = json.loads(raw)
            except ValueError:
                raise invalid_field("resource", "The object metadata is not valid JSON.") from None
            if not isinstance(metadata, dict):
                raise invalid_field("resource", "The object metadata must be a JSON object.")
        name = _object_name(call.arg("name") or metadata.get("name"))
        await in_thread(self.storage.object_destination, _uri(bucket, name))
        upload_id = uuid.uuid4().hex
        session = {
            "bucket": bucket,
            "name": name,
            "caller": call.caller.member,
            "userProject": call.arg("userProject"),
        }
        with disk_errors_reported("the server's upload spool"):
            self.sessions_dir.mkdir(parents=True, exist_ok=True)
            (self.sessions_dir / f"{upload_id}.json").write_text(json.dumps(session))
            (self.sessions_dir / f"{upload_id}.data").touch()
        query = f"uploadType=resumable&upload_id={upload_id}"
        if call.arg("userProject"):
            query += f"&userProject={quote(str(call.arg('userProject')), safe='')}"
        location = f"{_base(call)}/upload/storage/v1/b/{bucket}/o?{query}"
        return Reply(200, b"", headers=((b"location", location.encode()),))

    async def resume_upload(self, call: Call) -> Reply:
        upload_id = call.arg("upload_id") or ""
        if not _UPLOAD_ID.fullmatch(upload_id):
            raise invalid_field("upload_id", "Resume an upload with the upload_id it was given.")
        # One chunk of a session at a time: a client's retry of the last chunk must not
        # append beside the first or find the session half removed.
        lock = self._upload_locks.setdefault(upload_id, asyncio.Lock())
        async with lock:
            return await self._resume_upload(call, upload_id)

    async def _resume_upload(self, call: Call, upload_id: str) -> Reply:
        session_file = self.sessions_dir / f"{upload_id}.json"
        data_file = self.sessions_dir / f"{upload_id}.data"
        try:
            session = json.loads(session_file.read_text())
        except (OSError, ValueError):
            raise ApiError(Code.NOT_FOUND, f"No upload session {upload_id}.") from None
        if session["caller"] != call.caller.member or session["bucket"] != call.params["bucket"]:
            raise ApiError(Code.PERMISSION_DENIED, "This upload session belongs to another caller.")
        try:
            received = data_file.stat().st_size
        except FileNotFoundError:  # finished by the request just before this one
            raise ApiError(Code.NOT_FOUND, f"No upload session {upload_id}.") from None
        found = _CONTENT_RANGE.fullmatch(
            call.headers.get(b"content-range", b"bytes */*").decode("latin-1").strip()
        )
        if found is None:
            raise ApiError(Code.INVALID_ARGUMENT, "Invalid Content-Range for a resumable upload.")
        first, total = found.group(1), found.group(3)
        if first is not None and int(first) != received:
            raise ApiError(
                Code.INVALID_ARGUMENT,
                f"The upload has {received} bytes; the next chunk must start there, not at {first}.",
            )
        with disk_errors_reported("the server's upload spool"), open(data_file, "ab") as spool:
            async for chunk in call.chunks(MAX_UPLOAD_BYTES - received):
                spool.write(chunk)
                received += len(chunk)
        if total == "*" or received < int(total):
            headers = ((b"range", f"bytes=0-{received - 1}".encode()),) if received else ()
            return Reply(308, b"", headers=headers)
        if received > int(total):
            raise ApiError(Code.INVALID_ARGUMENT, f"The upload sent more than {total} bytes.")
        digests = await in_thread(_file_digests, data_file)
        try:
            return await self._store(call, data_file, session["bucket"], session["name"], digests)
        finally:
            session_file.unlink(missing_ok=True)
            data_file.unlink(missing_ok=True)
            self._upload_locks.pop(upload_id, None)

    def _spool_file(self) -> Path:
        with disk_errors_reported("the server's upload spool"):
            self.spool_dir.mkdir(parents=True, exist_ok=True)
            handle, spooled = tempfile.mkstemp(dir=self.spool_dir, prefix="upload-")
            os.close(handle)
        return Path(spooled)

    # -- buckets ---------------------------------------------------------------------------

    async def get_bucket(self, call: Call) -> Reply:
        bucket = call.params["bucket"]
        await self.check_billed(call, "storage.buckets.get", bucket)
        if not (self.storage.root / bucket).is_dir():
            raise _no_bucket(bucket)
        return Reply.json(await in_thread(self._bucket_resource, bucket))

    async def list_buckets(self, call: Call) -> Reply:
        project = _project_arg(call)
        await in_thread(
            self.platform.access.check, call.caller, "storage.buckets.list", f"projects/{project}"
        )
        instance_wide = await in_thread(_holds, self.platform, call.caller, "storage.buckets.list")
        names = [uri[len("gs://") : -1] for uri in await in_thread(self.storage.buckets)]
        items = []
        for name in names:
            owner = await in_thread(self._owner, name)
            if owner == project or (owner is None and instance_wide):
                items.append(await in_thread(self._bucket_resource, name))
        body: dict[str, Any] = {"kind": "storage#buckets"}
        if items:
            body["items"] = items
        return Reply.json(body)

    async def insert_bucket(self, call: Call) -> Reply:
        project = _project_arg(call)
        await in_thread(
            self.platform.access.check, call.caller, "storage.buckets.create", f"projects/{project}"
        )
        body = await call.json("bucket")
        name = body.get("name") if isinstance(body, dict) else None
        if not isinstance(name, str) or not name:
            raise invalid_field("bucket.name", 'Name the bucket: {"name": "my-bucket"}.')
        check_bucket_name(name, f"gs://{name}")
        await in_thread(self.storage.make_bucket, f"gs://{name}")
        await in_thread(self.platform.projects.bucket_project, name, project)
        return Reply.json(await in_thread(self._bucket_resource, name))

    def _bucket_resource(self, bucket: str) -> dict[str, Any]:
        path = self.storage.root / bucket
        created = _timestamp(path.stat().st_ctime)
        owner = self._owner(bucket)
        resource: dict[str, Any] = {
            "kind": "storage#bucket",
            "id": bucket,
            "name": bucket,
            "selfLink": f"/storage/v1/b/{bucket}",
            "location": "US-CENTRAL1",
            "locationType": "region",
            "storageClass": "STANDARD",
            "metageneration": "1",
            "etag": "CAE=",
            "timeCreated": created,
            "updated": created,
        }
        if owner:
            resource["projectNumber"] = project_number(owner)
        return resource


# -- helpers -------------------------------------------------------------------------------


class _Digests:
    """MD5 and CRC32C of what was received, in Cloud Storage's base64 form."""

    def __init__(self) -> None:
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.crc = google_crc32c.Checksum()

    def update(self, data: bytes) -> None:
        self.md5.update(data)
        self.crc.update(data)

    def fields(self) -> dict[str, str]:
        return {
            "md5Hash": base64.b64encode(self.md5.digest()).decode(),
            "crc32c": base64.b64encode(self.crc.digest()).decode(),
        }


def _file_digests(path: Path) -> _Digests:
    digests = _Digests()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digests.update(chunk)
    return digests


def _check_sent_digests(metadata: dict[str, Any], digests: _Digests) -> None:
    """A client that sent checksums learns at once if the bytes arrived damaged."""
    for field, value in digests.fields().items():
        sent = metadata.get(field)
        if sent is not None and sent != value:
            raise ApiError(
                Code.INVALID_ARGUMENT,
                f"Provided {field} '{sent}' does not match the data received ('{value}').",
            )


def _split_multipart(body: bytes, boundary: bytes) -> tuple[dict[str, Any], bytes]:
    """The JSON metadata and the data of a multipart/related upload body.

    Lines may end in CRLF (google-cloud-storage) or LF alone (gcsfs).
    """
    delimiter = re.compile(rb"(?:\A|\r?\n)--" + re.escape(boundary) + rb"(--)?[ \t]*(?:\r?\n|\Z)")
    marks = list(delimiter.finditer(body))
    contents = [
        body[mark.end() : following.start()]
        for mark, following in zip(marks, marks[1:], strict=False)
        if mark.group(1) is None
    ]
    if len(contents) != 2:
        raise ApiError(
            Code.INVALID_ARGUMENT,
            "A multipart upload has two parts: the object's JSON metadata, then its data.",
        )
    bodies = []
    for part in contents:
        blank = re.search(rb"\r?\n\r?\n", part)
        if part.startswith((b"\r\n", b"\n")):  # a part with no headers at all
            bodies.append(part.split(b"\n", 1)[1])
        elif blank is None:
            raise ApiError(Code.INVALID_ARGUMENT, "A multipart upload part has no body.")
        else:
            bodies.append(part[blank.end() :])
    try:
        metadata = json.loads(bodies[0] or b"{}")
    except ValueError:
        raise invalid_field("resource", "The object metadata is not valid JSON.") from None
    if not isinstance(metadata, dict):
        raise invalid_field("resource", "The object metadata must be a JSON object.")
    return metadata, bodies[1]


async def _read_range(handle: BinaryIO, start: int, length: int) -> AsyncIterator[bytes]:
    try:
        await in_thread(handle.seek, start)
        left = length
        while left > 0:
            chunk: bytes = await in_thread(handle.read, min(_CHUNK, left))
            if not chunk:
                break
            left -= len(chunk)
            yield chunk
    finally:
        await in_thread(handle.close)


def _object_resource(
    base: str, bucket: str, name: str, entry: Entry, digests: _Digests | None = None
) -> dict[str, Any]:
    info = entry.location.local.stat()
    generation = str(info.st_mtime_ns // 1000)
    quoted = quote(name, safe="")
    resource: dict[str, Any] = {
        "kind": "storage#object",
        "id": f"{bucket}/{name}/{generation}",
        "selfLink": f"{base}/storage/v1/b/{bucket}/o/{quoted}",
        "mediaLink": f"{base}/download/storage/v1/b/{bucket}/o/{quoted}?generation={generation}&alt=media",
        "name": name,
        "bucket": bucket,
        "generation": generation,
        "metageneration": "1",
        "contentType": mimetypes.guess_type(name)[0] or "application/octet-stream",
        "storageClass": "STANDARD",
        "size": str(info.st_size),
        "etag": base64.b64encode(generation.encode()).decode(),
        "timeCreated": _timestamp(info.st_mtime),
        "updated": _timestamp(info.st_mtime),
        "timeStorageClassUpdated": _timestamp(info.st_mtime),
    }
    if digests is not None:
        resource.update(digests.fields())
    return resource


def _base(call: Call) -> str:
    """This server's URL as the caller named it (links in resources are absolute)."""
    return "http://" + call.headers.get(b"host", b"127.0.0.1").decode("latin-1")


def _timestamp(seconds: float) -> str:
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _uri(bucket: str, name: str) -> str:
    return f"gs://{bucket}/{name}"


def _object_name(name: Any) -> str:
    if not isinstance(name, str) or not name or name.endswith("/"):
        raise invalid_field("name", "Name the object with ?name=PATH (a file, not a folder).")
    return name


def _no_bucket(bucket: str) -> ApiError:
    return ApiError(Code.NOT_FOUND, f"The specified bucket does not exist: {bucket}")


def _decode_page_token(token: str | None) -> str:
    if not token:
        return ""
    try:
        return base64.b64decode(token.encode(), altchars=b"-_", validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        raise invalid_field("pageToken", "The page token is not one this server gave.") from None


def _project_arg(call: Call) -> str:
    project = call.arg("project") or call.arg("userProject")
    if not project:
        raise invalid_field("project", "Name the project with ?project=PROJECT.")
    return check_project(project)


def _billed(call: Call) -> dict[str, str]:
    billed = call.arg("userProject")
    return {"userProject": billed} if billed else {}


def _holds(platform: Platform, principal: Principal, permission: str) -> bool:
    """True when `principal` holds `permission` instance-wide (or nothing is enforced)."""
    access = platform.access
    return not access.enforcing or permission in access.permissions_on(principal, INSTANCE)
