"""The embedded job runner: finalize jobs in worker processes beside the server.

The queue only carries "look at recording N"; the recording's row says what to do and
how far it got, so a job lost with a crashed process is found again at the next start
(``callvault.recording.recovery``). Workers are separate processes (spawned, not forked
from a process with an event loop and threads) so decoding and encoding never hold the
GIL the packet path needs.
"""

from __future__ import annotations

import logging
import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor
from functools import partial
from pathlib import Path

from callvault.jobs.tasks import finalize

log = logging.getLogger(__name__)


class LocalJobRunner:
    def __init__(self, *, data_dir: Path, database_url: str, workers: int = 1) -> None:
        self._data_dir = str(data_dir)
        self._database_url = database_url
        self._pool = ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn")
        )
        self.submitted = 0
        self.completed = 0
        self.failed = 0
        self._pending: set[Future[str]] = set()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def enqueue_finalize(self, recording_id: int) -> None:
        future = self._pool.submit(finalize, self._data_dir, self._database_url, recording_id)
        self.submitted += 1
        self._pending.add(future)
        future.add_done_callback(partial(self._done, recording_id=recording_id))

    def _done(self, future: Future[str], *, recording_id: int) -> None:
        self._pending.discard(future)
        error = future.exception()
        if error is not None:
            self.failed += 1
            log.error("finalize of recording %d crashed: %s", recording_id, error)
            return
        self.completed += 1
        log.info("finalize of recording %d: %s", recording_id, future.result())

    def shutdown(self, *, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=not wait)
