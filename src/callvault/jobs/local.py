"""The embedded job runner: finalize jobs in worker processes beside the server.

The queue only carries "look at recording N"; the recording's row says what to do and
how far it got, so a job lost with a crashed process is found again at the next start
(``callvault.recording.recovery``), and one waiting for a mixer window is enqueued
again by the server's scheduler when the window opens. Workers are separate processes
(spawned, not forked from a process with an event loop and threads) so decoding and
encoding never hold the GIL the packet path needs.

A worker that dies (a crash in native code, the OOM killer) breaks the whole process
pool: every job in it fails with ``BrokenProcessPool``. The runner then starts a new
pool and submits those jobs again; a recording whose job keeps killing its worker is
given up by the job itself after a few attempts (``finalize.MAX_ATTEMPTS``), so one bad
recording cannot stop all the others.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from pathlib import Path

from callvault.jobs.tasks import finalize

log = logging.getLogger(__name__)


class LocalJobRunner:
    def __init__(
        self,
        *,
        data_dir: Path,
        database_url: str,
        workers: int = 1,
        config_file: Path | None = None,
    ) -> None:
        self._data_dir = str(data_dir)
        self._database_url = database_url
        self._config_file = str(config_file) if config_file else None
        self._workers = workers
        self._pool = self._new_pool()
        self._lock = threading.Lock()  # done-callbacks run on the pool's own thread
        self.submitted = 0
        self.completed = 0
        self.failed = 0
        self.deferred = 0
        self.restarts = 0
        self._pending: dict[int, Future[str]] = {}
        self._orphans: set[int] = set()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self._workers, mp_context=multiprocessing.get_context("spawn")
        )

    @property
    def pending(self) -> int:
        return len(self._pending)

    def is_pending(self, recording_id: int) -> bool:
        return recording_id in self._pending

    def enqueue_finalize(self, recording_id: int) -> None:
        with self._lock:
            if recording_id in self._pending:
                return  # already queued: the job reads the row when it runs
            self._submit(recording_id)
        self.revive()  # the pool may have been found broken just now

    def _submit(self, recording_id: int) -> None:
        try:
            future = self._pool.submit(
                finalize, self._data_dir, self._database_url, recording_id, self._config_file
            )
        except BrokenProcessPool:
            self._orphans.add(recording_id)
            return
        self.submitted += 1
        self._pending[recording_id] = future
        future.add_done_callback(partial(self._done, recording_id=recording_id))

    def revive(self) -> None:
        """After a worker died: a new pool, and the jobs the old one lost submitted again."""
        with self._lock:
            if not self._orphans:
                return
            orphans, self._orphans = sorted(self._orphans), set()
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
            self.restarts += 1
            log.error("a finalize worker died; restarted the pool for %d job(s)", len(orphans))
            for recording_id in orphans:
                self._pending.pop(recording_id, None)
                self._submit(recording_id)

    def _done(self, future: Future[str], *, recording_id: int) -> None:
        with self._lock:
            if self._pending.get(recording_id) is future:
                del self._pending[recording_id]
            error = future.exception()
            if isinstance(error, BrokenProcessPool):
                self._orphans.add(recording_id)
                return
            if error is not None:
                self.failed += 1
                log.error("finalize of recording %d crashed: %s", recording_id, error)
                return
            state = future.result()
            if state == "failed":
                self.failed += 1
            elif state == "deferred":
                self.deferred += 1
            else:
                self.completed += 1
        log.info("finalize of recording %d: %s", recording_id, state)

    def shutdown(self, *, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=not wait)
