"""Which new SIPREC sessions are recorded (REQUIREMENTS T1, T2, T6, W4, W12).

The administrator's runtime settings decide: ``recording.enabled`` (off: nothing new is
recorded), and by the call's direction ``recording.inbound``, ``recording.outbound`` and
``recording.internal``. The direction comes from the SIPREC metadata: the caller is the
first participant (SRCs list the calling party first), the callee the second, and who is
internal follows ``recording.layout``'s rule (``recording.internal_aors``, platform
users named in the metadata, short extensions). A session without two participants, or
between two external parties, has no direction a setting names: it is recorded.
``recording.campaigns`` (T6) is declared but cannot apply yet: nothing in SIPREC
metadata says a call came from a dialler.

A session that is not to be recorded is still answered (the SRC must not fail the
call): 200 OK with every stream refused (port 0, ``a=inactive``), no RTP port opened,
no capture file, its metadata stored; the segment ends ``metadata_only`` and no
recording is made. re-INVITEs and UPDATEs of such a session are answered the same way,
so a session never starts recording half-way. Recordings already made are not touched
(W12).

The settings are read from the database at most once a second (:class:`RulesSource`),
so a change applies to the next call without a database read per INVITE.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from callvault.config import Settings
from callvault.db import Database
from callvault.db.models import Segment
from callvault.recording.layout import is_internal
from callvault.recording.store import NewSegment, SegmentIds, create_segment
from callvault.runtime_settings import effective_settings
from callvault.sdp.answer import build_answer, build_offer
from callvault.sdp.errors import SdpError
from callvault.sdp.session import SessionDescription
from callvault.sip.message import Request, Response, make_response
from callvault.siprec.metadata import MetadataError, RecordingMetadata, merge
from callvault.siprec.offer import OfferError, read_offer

if TYPE_CHECKING:
    from callvault.recording.session import RecordingSession
    from callvault.recording.srs import SessionRecordingServer

__all__ = [
    "Decision",
    "NoCapture",
    "RecordingRules",
    "RulesSource",
    "create_metadata_only_segment",
    "direction_of",
    "metadata_only_answer",
    "metadata_only_update",
    "rules_from",
]

#: Seconds a read of the settings is reused for new sessions.
RULES_TTL = 1.0


@dataclass(frozen=True, slots=True)
class Decision:
    record: bool
    reason: str  # why not, for the log ("" when recorded)


@dataclass(frozen=True, slots=True)
class RecordingRules:
    enabled: bool = True
    inbound: bool = True
    outbound: bool = True
    internal: bool = True
    campaigns: bool = True
    internal_aors: tuple[str, ...] = ()

    def decide(self, metadata: RecordingMetadata | None) -> Decision:
        """Record this new session, or keep its metadata only?"""
        if not self.enabled:
            return Decision(False, "recording.enabled is false")
        direction = direction_of(metadata, self.internal_aors)
        wanted = {"inbound": self.inbound, "outbound": self.outbound, "internal": self.internal}
        if direction in wanted and not wanted[direction]:
            return Decision(False, f"recording.{direction} is false")
        return Decision(True, "")


def direction_of(metadata: RecordingMetadata | None, internal_aors: tuple[str, ...]) -> str | None:
    """``inbound``, ``outbound``, ``internal`` or ``external`` from the first two
    participants; None when the metadata does not name two."""
    if metadata is None or len(metadata.participants) < 2:
        return None
    bw = metadata.broadworks

    def internal(index: int) -> bool:
        person = metadata.participants[index]
        # The BroadWorks user the metadata is about is a platform user (as the store
        # marks it on the participant row).
        platform = (
            bw.user_id
            if bw is not None and bw.user_id and person.aor and bw.user_id in person.aor
            else None
        )
        return is_internal(person.aor, platform, internal_aors)

    caller, callee = internal(0), internal(1)
    if caller and callee:
        return "internal"
    if caller != callee:
        return "outbound" if caller else "inbound"
    return "external"


def rules_from(settings: Settings) -> RecordingRules:
    return RecordingRules(
        enabled=settings["recording.enabled"],
        inbound=settings["recording.inbound"],
        outbound=settings["recording.outbound"],
        internal=settings["recording.internal"],
        campaigns=settings["recording.campaigns"],
        internal_aors=settings["recording.internal_aors"],
    )


class RulesSource:
    """The rules in force, read from the effective settings at most every ``ttl`` s."""

    def __init__(self, database: Database, base: Settings, ttl: float = RULES_TTL) -> None:
        self.database = database
        self.base = base
        self.ttl = ttl
        self._cached: tuple[float, RecordingRules] | None = None

    def read(self) -> RecordingRules:
        return self.database.read(
            lambda s: rules_from(effective_settings(s, self.base, check=False))
        )

    async def current(self) -> RecordingRules:
        now = time.monotonic()
        if self._cached is not None and now - self._cached[0] < self.ttl:
            return self._cached[1]
        loop = asyncio.get_running_loop()
        rules = await loop.run_in_executor(None, self.read)
        self._cached = (now, rules)
        return rules


class NoCapture:
    """The capture of a metadata-only session: there is none, and nothing is written."""

    path: str = ""
    disk_full: bool = False

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def create_metadata_only_segment(db: Session, new: NewSegment) -> SegmentIds:
    """The segment of a session kept as metadata only: no streams and no capture file."""
    ids = create_segment(db, new)
    segment = db.get(Segment, ids.segment_id)
    if segment is not None:
        segment.capture_path = None
    return ids


def _inactive(description: SessionDescription) -> SessionDescription:
    # Every m-line refused with port 0, and said inactive: no media is wanted.
    for media in description.media:
        media.port = 0
        media.attributes = [
            (k, v) for k, v in media.attributes if k not in ("recvonly", "sendrecv", "sendonly")
        ]
        if media.attribute("inactive") is None:
            media.attributes.append(("inactive", None))
    return description


def metadata_only_answer(
    offer: SessionDescription | None,
    labels: list[str],
    *,
    address: str,
    session_id: int,
    session_version: int,
) -> SessionDescription:
    """The SDP of a session kept as metadata only: the answer to ``offer`` with every
    stream refused, or (an INVITE without SDP) an offer of ``labels`` the same way."""
    if offer is None:
        return _inactive(
            build_offer(
                labels,
                address=address,
                ports=[0] * len(labels),
                session_id=session_id,
                session_version=session_version,
            )
        )
    return _inactive(
        build_answer(
            offer,
            [None] * len(offer.media),
            address=address,
            ports=[0] * len(offer.media),
            session_id=session_id,
            session_version=session_version,
        )
    )


async def metadata_only_update(
    srs: SessionRecordingServer, session: RecordingSession, request: Request
) -> Response:
    """A re-INVITE or UPDATE of a metadata-only session: keep its metadata, refuse media."""
    try:
        offer = read_offer(request.headers.get("Content-Type") or "", request.body)
    except (OfferError, SdpError, MetadataError) as exc:
        return make_response(request, getattr(exc, "status", 400), str(exc))
    if offer.metadata is not None:
        if offer.metadata.datamode == "partial" and session.metadata is not None:
            session.metadata = merge(session.metadata, offer.metadata)
        else:
            session.metadata = offer.metadata
    if offer.metadata_raw is not None or offer.metadata is not None:
        await srs.store.record_metadata(
            session.segment_id, request, offer, session.metadata, time.time()
        )
    if offer.sdp is None and request.method != "INVITE":
        return make_response(request, 200, "OK")
    session.sdp_version += 1
    known = session.metadata.streams if session.metadata is not None else ()
    body = metadata_only_answer(
        offer.sdp,
        [s.label for s in known if s.label] or ["1"],
        address=srs.media.advertised_address(session.dialog.peer.host),
        session_id=session.sdp_session_id,
        session_version=session.sdp_version,
    )
    return make_response(
        request,
        200,
        "OK",
        headers=[("Contact", session.dialog.local_contact)],
        body=str(body).encode(),
        content_type="application/sdp",
    )
