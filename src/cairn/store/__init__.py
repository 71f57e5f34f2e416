"""The metadata store: resources as JSON documents in SQLite (WAL) or PostgreSQL.

The contract every backend meets is written in docs/store.md and checked by
tests/store/test_contract.py against both backends.
"""

from cairn.store.documents import DocumentRepository
from cairn.store.errors import DuplicateKeyError, EtagMismatchError
from cairn.store.metadata_store import MetadataStore
from cairn.store.runtime import RuntimeStore

__all__ = [
    "DocumentRepository",
    "DuplicateKeyError",
    "EtagMismatchError",
    "MetadataStore",
    "RuntimeStore",
]
