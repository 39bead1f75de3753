"""Blob stores: where recording files live (REQUIREMENTS X7, U8).

One small interface (:class:`BlobStore`), two backends: the local data directory
(``local``) and an S3 bucket (``s3``: the customer's own or any S3-compatible service).
A recording's ``store`` column names the backend that holds its file and ``path`` its
key there. Finalize always writes the file locally first; with ``storage.backend = s3``
the uploader moves it to the bucket, and the local copy is removed only once the
bucket confirmed size and checksum.
"""

from callvault.store.base import BlobStore, StoredObject, StoreError
from callvault.store.local import LocalStore

__all__ = ["BlobStore", "LocalStore", "StoreError", "StoredObject"]
