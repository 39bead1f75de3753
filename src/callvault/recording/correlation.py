"""Which customer interaction a recording session belongs to.

A transferred call reaches the recorder as several recording sessions (one per leg,
REQUIREMENTS D4/U1). They share identifiers that the SRC copies from the communication
session: the SIPREC group id, the CS Session-ID UUIDs carried in the metadata,
BroadWorks' correlation id, Avaya's UCID, Cisco's GUID. Every key found is stored on the
call, and a new session joins the call that already holds any of its keys.
"""

from __future__ import annotations

from callvault.sip.message import Request
from callvault.siprec.metadata import RecordingMetadata

CallKey = tuple[str, str]

_NULL_UUID = "0" * 32

# SIP headers whose value identifies the communication session across legs.
_HEADER_KEYS: tuple[tuple[str, str], ...] = (
    ("X-BroadWorks-Correlation-Info", "broadworks-correlation"),
    ("Cisco-Guid", "cisco-guid"),
    ("User-to-User", "user-to-user"),
)


def call_keys(request: Request, metadata: RecordingMetadata | None) -> list[CallKey]:
    """Every identifier in ``request`` and ``metadata`` that names the call, most
    specific first; never empty (the recording dialog's Call-ID is the last resort)."""
    keys: list[CallKey] = []

    def add(kind: str, value: str | None) -> None:
        if value and value.strip() and (kind, value.strip()) not in keys:
            keys.append((kind, value.strip()))

    if metadata is not None:
        add("siprec-group", metadata.group_id)
        for kind, value in metadata.correlation_ids:
            add(kind, value)
        if metadata.broadworks is not None:
            add("broadworks-correlation", metadata.broadworks.ext_tracking_id)
        for sip_session_id in metadata.sip_session_ids:
            for uuid in _session_id_uuids(sip_session_id):
                add("cs-session-id", uuid)
    for header, kind in _HEADER_KEYS:
        add(kind, request.headers.get(header))
    add("rs-call-id", request.call_id)
    return keys


def _session_id_uuids(value: str) -> list[str]:
    """``local;remote=remote`` (RFC 7989) -> the non-null UUIDs, lower case."""
    local, _, params = value.partition(";")
    uuids = [local.strip().lower()]
    for param in params.split(";"):
        name, _, val = param.partition("=")
        if name.strip().lower() == "remote":
            uuids.append(val.strip().lower())
    return [u for u in uuids if u and u != _NULL_UUID]
