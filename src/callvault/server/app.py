"""``callvault serve``: one process with SIP, RTP, HTTP and the finalize workers.

Start-up order: database (migrated), crash recovery (sessions left active by a killed
process are closed as interrupted and their finalize jobs enqueued), then the sockets.
SIGTERM/SIGINT end live sessions cleanly (BYE, commit, finalize) before exiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import uvicorn
import uvloop
from sqlalchemy.orm import Session

from callvault.config import ConfigError, Settings
from callvault.crypto.openpgp import remove_stale_homes
from callvault.db import Database
from callvault.db.queries import recordings_due
from callvault.jobs.local import LocalJobRunner
from callvault.logs import configure_logging
from callvault.recording.policy import policy_from
from callvault.recording.purge import TICK_SECONDS, retention_tick
from callvault.recording.recovery import recover_interrupted
from callvault.recording.srs import SessionRecordingServer, SrsLimits
from callvault.recording.store import SessionStore
from callvault.runtime_settings import effective_settings
from callvault.server.http import Readiness, health_router
from callvault.server.media import ServerMedia
from callvault.server.rtp import PortPool
from callvault.server.sip_endpoint import SipEndpoint
from callvault.server.sip_transport import SipTransports
from callvault.sip.transaction import TransactionLayer
from callvault.store.uploader import INTERVAL as UPLOAD_INTERVAL
from callvault.store.uploader import Uploader
from callvault.web.app import create_web_app
from callvault.web.bootstrap import ensure_admin
from callvault.web.keys import load_secret
from callvault.web.principal import WebContext
from callvault.web.webhooks import deliver_due, outbox_counts

log = logging.getLogger("callvault.server")

#: Seconds between looks for recordings whose mixer window has opened.
SCHEDULER_INTERVAL = 5.0
#: Seconds between looks for due webhook deliveries (the outbox).
WEBHOOK_INTERVAL = 2.0


def run(settings: Settings) -> int:
    configure_logging(settings["log.level"], settings["log.format"])
    _raise_file_limit()
    try:
        uvloop.run(serve(settings))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        log.error("cannot start: %s", exc)
        return 1
    except ConfigError as exc:
        log.error("cannot start: %s", exc)
        return 2
    return 0


def open_database(settings: Settings) -> Database:
    if settings.database_url:
        return Database(settings.database_url)
    return Database.for_data_dir(settings.data_dir)


async def serve(settings: Settings) -> None:
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    database = open_database(settings)
    database.migrate()
    # The recording settings must agree (format and codec, ...) before calls arrive: a
    # bad combination in the file or the environment stops the server here.
    database.read(lambda session: effective_settings(session, settings))
    if (password := database.write(ensure_admin)) is not None:
        # Once, on the first start: the only time this password is shown.
        notice = f"first start: created user 'admin' with password {password} (change it)"
        print(notice, file=sys.stderr, flush=True)
        log.warning("first start: created user 'admin'; its password was printed on stderr")
    store = SessionStore(database)
    jobs = LocalJobRunner(
        data_dir=data_dir,
        database_url=database.url,
        workers=settings["finalize.workers"],
        config_file=settings.config_file,
    )
    if stale := remove_stale_homes():
        log.warning("removed %d gpg homes left by processes that were killed", stale)
    for recording_id in await store.run(recover_interrupted, time.time(), data_dir):
        jobs.enqueue_finalize(recording_id)

    sip_listen = settings["sip.listen"]
    rtp_address = settings["rtp.address"] or sip_listen.host
    media = ServerMedia(
        data_dir=data_dir,
        pool=PortPool(settings["rtp.ports"]),
        bind_address=rtp_address,
        advertise_address=settings["sip.advertise_address"],
        min_free_bytes=settings["capture.min_free_mb"] * 2**20,
    )
    endpoint = SipEndpoint(TransactionLayer(), max_headers=settings["sip.max_headers"])
    transports = SipTransports(
        endpoint.on_message,
        endpoint.on_framing_error,
        max_message_size=settings["sip.max_message_size"],
        tcp_buffer=settings["sip.tcp_buffer"],
    )
    srs = SessionRecordingServer(
        media=media,
        store=store,
        jobs=jobs,
        respond=endpoint.respond,
        send_request=endpoint.send_request,
        clock=time.time,
        limits=SrsLimits(
            max_sessions=settings["sip.max_sessions"],
            min_se=settings["sip.min_se"],
            session_expires=settings["sip.session_expires"],
            rtp_inactivity_timeout=settings["rtp.inactivity_timeout"],
        ),
        sip_port=sip_listen.port,
        settings=settings,
    )
    endpoint.transports = transports
    endpoint.srs = srs
    await transports.start(sip_listen.host, sip_listen.port)
    log.info("SIP listening on %s (UDP and TCP)", sip_listen)

    def readiness() -> Readiness:
        ok = media.can_accept_sessions()
        return Readiness(ok, {"disk_free_mb": media.disk_free // 2**20})

    outbox = {"pending": 0, "failed": 0}  # refreshed by deliver_webhooks, read by /metrics
    uploader = Uploader(database, settings, data_dir)  # S3 uploads (storage.backend s3)

    def gauges() -> dict[str, float]:
        return {
            "callvault_webhook_deliveries_pending": outbox["pending"],
            "callvault_webhook_deliveries_failed": outbox["failed"],
            "callvault_uploads_pending": uploader.pending,
            "callvault_uploads_failing": uploader.failing,
            "callvault_sessions_live": srs.live_sessions,
            "callvault_rtp_ports_in_use": media.pool.in_use * 2,
            "callvault_sip_datagrams_received": transports.datagrams_received,
            "callvault_sip_bad_messages": endpoint.bad_messages,
            "callvault_finalize_pending": jobs.pending,
            "callvault_finalize_failed": jobs.failed,
            "callvault_finalize_worker_restarts": jobs.restarts,
            "callvault_disk_free_bytes": media.disk_free,
        }

    http = settings["http.listen"]
    web = uvicorn.Server(
        uvicorn.Config(
            create_web_app(
                WebContext(database, data_dir, settings, load_secret(data_dir), live=srs),
                extra=[health_router(readiness, gauges)],
            ),
            host=http.host,
            port=http.port,
            log_level="warning",
            lifespan="off",
        )
    )
    # Signals are ours (graceful end of live sessions first), not uvicorn's.
    web.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def due(session: Session, now: datetime) -> list[int]:
        policy = policy_from(effective_settings(session, settings))
        open_now = policy.wait_until(now.timestamp()) is None
        return recordings_due(session, now, window_open=open_now)

    async def schedule_due() -> None:
        """Enqueue recordings whose mixer window has opened (mixer.windows)."""
        jobs.revive()  # jobs lost with a worker that died are submitted again
        for recording_id in await store.run(due, datetime.now(UTC)):
            jobs.enqueue_finalize(recording_id)

    async def deliver_webhooks() -> None:
        """Send the webhook deliveries that are due, then count what is left."""
        await deliver_due(database, lambda: datetime.now(UTC))
        outbox.update(await loop.run_in_executor(None, database.read, outbox_counts))

    periodic = [
        _every(settings["capture.flush_interval"], media.flush_captures),
        _every(1.0, srs.check_timers),
        _every(1.0, media.check_disk),
        _every_async(settings["stats.persist_interval"], lambda: store.save_stats(srs)),
        _every_async(SCHEDULER_INTERVAL, schedule_due),
        _every_async(WEBHOOK_INTERVAL, deliver_webhooks),
        _every_async(TICK_SECONDS, lambda: retention_tick(database, settings, data_dir)),
        _every_async(UPLOAD_INTERVAL, uploader.run),
    ]
    tasks = [asyncio.create_task(coro) for coro in periodic]
    web_task = asyncio.create_task(web.serve())
    log.info("callvault serving; data in %s", data_dir)
    await stop.wait()
    log.info("shutting down")
    await srs.shutdown()
    for task in tasks:
        task.cancel()
    web.should_exit = True
    with contextlib.suppress(Exception):
        await web_task
    await transports.close()
    media.flush_captures()
    jobs.shutdown(wait=True)
    store.close()
    database.dispose()


async def _every(interval: float, action: Callable[[], Any]) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            action()
        except Exception:
            log.exception("periodic task %s failed", getattr(action, "__name__", action))


async def _every_async(interval: float, action: Callable[[], Awaitable[Any]]) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await action()
        except Exception:
            log.exception("periodic task failed")


def _raise_file_limit() -> None:
    """Thousands of calls need thousands of sockets: lift the soft limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
