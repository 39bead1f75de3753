"""Decrypting a stored ciphertext as a stream of plaintext chunks, never to disk.

:class:`PlaintextStream` runs ``gpg --decrypt`` (python-gnupg, in a throwaway home:
:func:`callvault.crypto.openpgp.gnupg_home`) in a worker thread. The ciphertext is fed
to gpg's stdin from an iterator of chunks (a blob store's ``read``); gpg's stdout is
handed chunk by chunk (python-gnupg's ``on_data``) to a small bounded queue that the
consumer (an HTTP response, the CLI) drains. Memory stays bounded by the queue
(``QUEUE_CHUNKS`` x 64 KiB) and the pipes: a slow reader makes gpg wait, nothing piles
up. :meth:`PlaintextStream.open` waits for the first chunk, so a wrong or missing
passphrase is an exception before any byte is answered, not a cut-off body.

Closing the stream early (the client went away, a Range was served) stops feeding gpg
and throws its output away, so the process ends at once; the worker then kills the
agent and removes the home. A consumer that stops reading without closing is taken for
gone after :data:`IDLE_SECONDS`.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from callvault.crypto.openpgp import (
    BadPassphrase,
    OpenPGPError,
    failure,
    gnupg_home,
    one_line,
)

__all__ = ["IDLE_SECONDS", "QUEUE_CHUNKS", "PlaintextStream"]

log = logging.getLogger(__name__)

#: Plaintext chunks (64 KiB each) waiting for the consumer at most.
QUEUE_CHUNKS = 4
#: A consumer that takes nothing for this long is gone (an HTTP client that vanished
#: without the server noticing): the stream closes itself rather than keep gpg waiting.
IDLE_SECONDS = 300.0
_END = object()
_POLL = 0.1


class _Feed:
    """A file-like ``read`` over an iterator of chunks (what python-gnupg copies to
    gpg's stdin); returns end-of-file once the stream is closed."""

    def __init__(self, chunks: Iterable[bytes], closed: threading.Event) -> None:
        self._chunks = iter(chunks)
        self._closed = closed
        self._left = b""
        # Why the source stopped (the bucket unreachable, the file gone): python-gnupg's
        # writer thread would only log it, and gpg would report a cut-off message.
        self.error: Exception | None = None

    def read(self, size: int = -1) -> bytes:
        while not self._left:
            if self._closed.is_set() or self.error is not None:
                return b""
            try:
                self._left = next(self._chunks)
            except StopIteration:
                return b""
            except Exception as exc:
                self.error = exc
                return b""
        if size < 0:
            size = len(self._left)
        out, self._left = self._left[:size], self._left[size:]
        return out

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()


class PlaintextStream(Iterator[bytes]):
    """Plaintext chunks of ``ciphertext`` decrypted with ``private_key``.

    Use :meth:`open` (it raises ``PassphraseRequired``, ``BadPassphrase``, ``WrongKey``
    or ``OpenPGPError`` before the first chunk, or what reading the ciphertext raised:
    ``StoreError``, ``FileNotFoundError``); iterate; :meth:`close` when done early.
    An error after the first chunk (a ciphertext cut short or altered) is raised by
    ``next`` in the middle of the stream.
    """

    def __init__(
        self,
        ciphertext: Iterable[bytes],
        private_key: str,
        passphrase: str | None,
        *,
        what: str = "the recording",
    ) -> None:
        self._closed = threading.Event()
        self._queue: queue.Queue[Any] = queue.Queue(QUEUE_CHUNKS)
        self._feed = _Feed(ciphertext, self._closed)
        self._key = private_key
        self._passphrase = passphrase or None
        self._what = what
        self._pending: list[bytes] = []
        self._done = False
        self._worker = threading.Thread(target=self._run, name="gpg-decrypt", daemon=True)

    @classmethod
    def open(
        cls,
        ciphertext: Iterable[bytes],
        private_key: str,
        passphrase: str | None,
        *,
        what: str = "the recording",
    ) -> PlaintextStream:
        stream = cls(ciphertext, private_key, passphrase, what=what)
        stream._worker.start()
        try:
            first = stream._take()
        except BaseException:
            stream.close()
            raise
        if first is not None:
            stream._pending.append(first)
        return stream

    # -- the worker -------------------------------------------------------------------

    def _give(self, item: Any) -> None:
        waited = 0.0
        while not self._closed.is_set():
            try:
                self._queue.put(item, timeout=_POLL)
                return
            except queue.Full:
                waited += _POLL
                if waited >= IDLE_SECONDS:  # nobody reads any more: free gpg and the home
                    self._closed.set()

    def _on_data(self, chunk: bytes) -> bool:
        if chunk:
            self._give(chunk)
        return False  # python-gnupg must not keep a copy of the plaintext

    def _run(self) -> None:
        outcome: Any = _END
        try:
            if self._passphrase is not None and not one_line(self._passphrase):
                raise BadPassphrase(f"{self._what}: wrong passphrase")
            with gnupg_home() as gpg:
                imported = gpg.import_keys(self._key)
                if not imported.fingerprints:
                    raise OpenPGPError(f"{self._what}: the stored private key cannot be read")
                gpg.on_data = self._on_data
                try:
                    result = gpg.decrypt_file(self._feed, passphrase=self._passphrase)
                except OSError:  # gpg stopped reading: its status lines say why
                    result = gpg.last_result
                    if result is None or result.ok:
                        raise
                if self._feed.error is not None:  # the store, not gpg, is the reason
                    outcome = self._feed.error
                elif not result.ok and not self._closed.is_set():
                    outcome = failure(result, passphrase=self._passphrase, what=self._what)
        except OpenPGPError as exc:
            outcome = exc
        except Exception as exc:  # a bug or gpg missing: said, not swallowed
            log.exception("%s: decryption failed", self._what)
            outcome = OpenPGPError(f"{self._what}: gpg failed: {type(exc).__name__}: {exc}")
        finally:
            try:
                self._feed.close()
            except Exception:  # still being read by python-gnupg's writer: left to GC
                log.debug("%s: ciphertext source not closed", self._what, exc_info=True)
            self._give(outcome)

    # -- the consumer -----------------------------------------------------------------

    def _take(self) -> bytes | None:
        """The next chunk; None at the end; the worker's error raised."""
        if self._done:
            return None
        while True:
            try:
                item = self._queue.get(timeout=_POLL)
                break
            except queue.Empty:
                if not self._worker.is_alive() and self._queue.empty():
                    self._done = True
                    raise OpenPGPError(
                        f"{self._what}: decryption stopped without a reason"
                    ) from None
        if item is _END:
            self._done = True
            return None
        if isinstance(item, BaseException):
            self._done = True
            raise item
        assert isinstance(item, bytes)
        return item

    def __next__(self) -> bytes:
        if self._pending:
            return self._pending.pop()
        chunk = self._take()
        if chunk is None:
            self._worker.join()
            raise StopIteration
        return chunk

    def close(self, wait: float = 30.0) -> None:
        """Stop: gpg is fed end-of-file, its output dropped; wait for its cleanup."""
        self._closed.set()
        self._pending.clear()
        self._done = True
        while True:  # unblock a worker waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if self._worker.is_alive() and threading.current_thread() is not self._worker:
            self._worker.join(wait)

    def __enter__(self) -> PlaintextStream:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
