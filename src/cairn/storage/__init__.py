"""Artefact storage: gs:// URIs on local buckets (and, later, real object stores) via fsspec."""

from cairn.storage.buckets import BucketStorage
from cairn.storage.copying import CopyStep
from cairn.storage.listing import Entry
from cairn.storage.uris import BucketUri, has_wildcard, is_bucket_uri, parse_bucket_uri

__all__ = [
    "BucketStorage",
    "BucketUri",
    "CopyStep",
    "Entry",
    "has_wildcard",
    "is_bucket_uri",
    "parse_bucket_uri",
]
