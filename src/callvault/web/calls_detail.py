"""How calls are shown: the list's rows, their CSV form, and one call in detail.

:func:`call_items` turns loaded calls into list rows: the fields of ``callvault calls
list --json`` plus what the list shows (REQUIREMENTS A2: caller ID with the extension,
source, destination, direction, duration, recording state, play and download URLs).
:func:`call_detail` is the call page (D3-D5, U2): the segments on the call's timeline,
who took part when, each stream's health with flags for what a listener would notice,
DTMF and paused marks, the recordings, and for administrators the raw SIPREC metadata.

Which calls a viewer may see is decided by :mod:`callvault.web.permissions`, not here;
filtering and paging are :mod:`callvault.web.calls_query`'s.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Text, cast, func, or_, select
from sqlalchemy.orm import Session

from callvault.db.accounts import CallGroup, Group, User
from callvault.db.models import Call, MetadataEvent, Participant, Recording, Segment, Stream
from callvault.db.queries import call_json
from callvault.recording.layout import user_part
from callvault.setting_values import parse_timezone
from callvault.web.permissions import visible_call
from callvault.web.principal import Principal

__all__ = [
    "CSV_COLUMNS",
    "HIGH_LOSS_PERCENT",
    "SILENT_RATIO",
    "call_detail",
    "call_items",
    "csv_header",
    "csv_line",
    "recording_state",
    "recording_urls",
    "stream_health",
]


def _extensions(db: Session, numbers: set[str]) -> dict[str, str]:
    """Number (an AOR's user part, lower case) -> the extension of the user it is."""
    if not numbers:
        return {}
    found: dict[str, str] = {}
    # Users whose extension is one of the numbers, and those with other addresses (their
    # JSON list is matched here: it is short, and JSON is not portably searchable).
    rows = db.execute(
        select(User.extension, User.addresses).where(
            User.active.is_(True),
            User.extension.is_not(None),
            or_(User.extension.in_(sorted(numbers)), func.length(cast(User.addresses, Text)) > 2),
        )
    ).all()
    for extension, addresses in rows:
        for address in [extension, *(addresses or [])]:
            part = (user_part(address) or "").lower()
            if part in numbers:
                found[part] = str(extension)
    return found


def _party(participant: Participant | None, extensions: dict[str, str]) -> dict[str, Any] | None:
    if participant is None:
        return None
    number = user_part(participant.aor)
    return {
        "aor": participant.aor,
        "number": number,
        "name": (participant.name or "").strip() or None,
        "extension": extensions.get((number or "").lower()),
    }


def _first_two(call: Call) -> tuple[Participant | None, Participant | None]:
    # SRCs list the caller first (the same rule the direction is decided by).
    for segment in call.segments:
        people = sorted(segment.participants, key=lambda p: p.id)
        if people:
            return people[0], people[1] if len(people) > 1 else None
    return None, None


def recording_state(call: Call) -> str:
    """One word for the list: recording (in progress), waiting, processing, ready,
    failed or none. Work still to do outranks a finished part: a transferred call whose
    first leg is ready and second processing says processing."""
    if call.state == "active":
        return "recording"
    states = {recording.state for recording in call.recordings}
    for state in ("processing", "waiting", "ready", "failed"):
        if state in states:
            return state
    return "none"


def recording_urls(recording_id: int) -> dict[str, str]:
    """Where the player and the download button fetch a recording (they answer once it
    is ready: look at its ``state``)."""
    return {
        "audio_url": f"/api/v1/recordings/{recording_id}/audio",
        "download_url": f"/api/v1/recordings/{recording_id}/download",
    }


def call_items(db: Session, calls: list[Call]) -> list[dict[str, Any]]:
    """List rows: ``calls list --json`` fields plus what the list shows (A2)."""
    pairs = [_first_two(call) for call in calls]
    numbers = {
        (user_part(p.aor) or "").lower() for pair in pairs for p in pair if p is not None and p.aor
    }
    extensions = _extensions(db, numbers - {""})
    items = []
    for call, (first, second) in zip(calls, pairs, strict=True):
        item = call_json(call)
        for recording in item["recordings"]:
            recording.update(recording_urls(recording["id"]))
        caller, callee = _party(first, extensions), _party(second, extensions)
        item.update(
            caller=caller,
            callee=callee,
            source=caller["number"] if caller else None,
            destination=callee["number"] if callee else None,
            recording_state=recording_state(call),
            has_recording=any(r.state == "ready" for r in call.recordings),
        )
        items.append(item)
    return items


# -- CSV ---------------------------------------------------------------------------------

CSV_COLUMNS = (
    "id",
    "date",
    "time",
    "started_at",
    "ended_at",
    "duration_s",
    "direction",
    "caller",
    "caller_name",
    "caller_extension",
    "callee",
    "callee_name",
    "source",
    "destination",
    "participants",
    "state",
    "recording_state",
    "uid",
)
_PHONE = re.compile(r"[+-]?[0-9][0-9 ().-]*")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # A spreadsheet runs a cell starting with = + - @ as a formula, and names come from
    # the caller's metadata: neutralise them, but keep phone numbers like +4822... .
    if text.startswith(_FORMULA) and not _PHONE.fullmatch(text):
        return "'" + text
    return text


def csv_header() -> str:
    return _line(list(CSV_COLUMNS))


def csv_line(item: dict[str, Any], tz: str) -> str:
    """One list row (a :func:`call_items` item) as a CSV line; ``date`` and ``time`` in
    ``tz``, the ISO times UTC."""
    zone = parse_timezone(tz)
    started = datetime.fromisoformat(item["started_at"]).astimezone(zone)
    caller, callee = item["caller"] or {}, item["callee"] or {}
    people = "; ".join(
        " ".join(x for x in (p["name"], f"<{p['aor']}>" if p["aor"] else None) if x)
        for p in item["participants"]
    )
    values = [
        item["id"],
        started.date().isoformat(),
        started.strftime("%H:%M:%S"),
        item["started_at"],
        item["ended_at"],
        item["duration_s"],
        item["direction"],
        caller.get("number"),
        caller.get("name"),
        caller.get("extension"),
        callee.get("number"),
        callee.get("name"),
        item["source"],
        item["destination"],
        people,
        item["state"],
        item["recording_state"],
        item["uid"],
    ]
    return _line([_cell(v) for v in values])


def _line(row: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(row)
    return out.getvalue()


# -- one call ----------------------------------------------------------------------------

# A channel quieter than -50 dBFS in 98 % of its 20 ms blocks carried nobody: a party
# who only listens still shows line noise and the odd "mm-hm" well above 2 %, so this
# only catches dead or muted legs (the analysis measures it per channel when finalizing).
SILENT_RATIO = 0.98
# Past 5 % packet loss G.711 with concealment audibly breaks up (ITU-T G.113 App. I puts
# its impairment near that of a low-bit-rate codec there); below it listeners rarely
# notice. Counted only over 50 expected packets (1 s of 20 ms packets) or more, so a
# stream that just started is not flagged for losing one of three packets.
HIGH_LOSS_PERCENT = 5.0
_MIN_EXPECTED = 50
# An ended segment shorter than this may fairly have carried no packets yet.
_MIN_SILENT_SPAN_S = 2.0


def _offset(moment: datetime | None, origin: datetime) -> float | None:
    return None if moment is None else round((moment - origin).total_seconds(), 3)


def _epoch_offset(epoch: float, origin: datetime) -> float:
    return round(epoch - origin.timestamp(), 3)


def _channel_silence(recordings: list[Recording]) -> dict[int, float]:
    """Stream id -> the silence ratio of the channel that holds that stream alone."""
    found: dict[int, float] = {}
    for recording in recordings:
        ratios = (recording.analysis or {}).get("silence_ratio") or []
        if recording.state != "ready" or recording.kind != "segment":
            continue  # a stitched file's ratio spans every leg: not one stream's
        for index, channel in enumerate(recording.channel_map or []):
            stream_ids = channel.get("stream_ids") or []
            if len(stream_ids) == 1 and index < len(ratios):
                found[int(stream_ids[0])] = float(ratios[index])
    return found


def stream_health(
    stream: Stream, segment: Segment, origin: datetime, silence_ratio: float | None
) -> dict[str, Any]:
    """Packets, loss %, jitter, silent stretches and paused intervals of one stream,
    times in seconds from ``origin`` (the call's start); flags are added by the caller
    (one-sidedness depends on the other streams)."""
    lost = max(stream.lost, 0)  # duplicates make RFC 3550's cumulative loss negative
    expected = stream.packets + lost
    paused = [
        [_offset(p.started_at, origin), _offset(p.ended_at, origin)]
        for p in stream.paused_intervals
    ]
    paused_s = sum(
        ((p.ended_at or segment.ended_at or p.started_at) - p.started_at).total_seconds()
        for p in stream.paused_intervals
    )
    span = (
        (segment.ended_at - segment.started_at).total_seconds() - paused_s
        if segment.ended_at is not None
        else None
    )
    stretches = [
        [_epoch_offset(a, origin), _epoch_offset(b, origin)]
        for a, b in stream.silent_stretches or []
    ]
    no_audio = span is not None and span >= _MIN_SILENT_SPAN_S and stream.packets == 0
    return {
        "packets": stream.packets,
        "lost": stream.lost,
        "loss_percent": round(100.0 * lost / expected, 2) if expected else None,
        "jitter_ms": stream.jitter_ms,
        "silent_stretches": stretches,
        "silent_s": round(sum(b - a for a, b in stretches), 3),
        "paused": paused,
        "silence_ratio": silence_ratio,
        # The finalized file's measure wins when there is one: it is what a listener hears
        # (a stream can carry packets of digital silence).
        "silent": no_audio if silence_ratio is None else silence_ratio >= SILENT_RATIO,
        "high_loss": expected >= _MIN_EXPECTED and 100.0 * lost / expected >= HIGH_LOSS_PERCENT,
    }


def _segment_streams(
    segment: Segment, origin: datetime, silence: dict[int, float]
) -> list[dict[str, Any]]:
    healths = [stream_health(s, segment, origin, silence.get(s.id)) for s in segment.streams]
    heard = any(not h["silent"] for h in healths)
    out = []
    for stream, health in zip(segment.streams, healths, strict=True):
        flags = []
        if health["silent"]:
            flags.append("silent")
            if heard:  # the others carried audio: the call was heard from one side only
                flags.append("one-sided")
        if health["high_loss"]:
            flags.append("high loss")
        del health["silent"], health["high_loss"]
        senders = sorted(
            (link.participant for link in stream.participant_links if link.role == "send"),
            key=lambda p: p.id,
        )
        out.append(
            {
                "id": stream.id,
                "segment_id": segment.id,
                "label": stream.label,
                "codec": stream.codec,
                "srtp": stream.srtp,
                "sent_by": [p.aor for p in senders if p.aor],
                "health": health,
                "flags": flags,
            }
        )
    return out


def _recording_detail(
    recording: Recording, item: dict[str, Any], origin: datetime
) -> dict[str, Any]:
    analysis = recording.analysis or {}
    offset: float | None = None
    if recording.kind == "segment" and recording.segment is not None:
        offset = _offset(recording.segment.started_at, origin)  # the file starts with its leg
    elif analysis.get("segments"):
        first = analysis["segments"][0]
        leg = next((s for s in recording.call.segments if s.id == first.get("segment_id")), None)
        if leg is not None:
            offset = round((leg.started_at - origin).total_seconds() - float(first["start"]), 3)
    return {
        **item,
        # Where second 0 of the file lies on the call's timeline; marks below are in
        # seconds from the start of the file, as the player seeks.
        "offset_s": offset,
        "dtmf": analysis.get("dtmf", []),
        "paused": analysis.get("paused", []),
        "silence_ratio": analysis.get("silence_ratio", []),
        "segments": analysis.get("segments", []),
    }


def _metadata_json(event: MetadataEvent) -> dict[str, Any]:
    return {
        "segment_id": event.segment_id,
        "received_at": event.received_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "sip_method": event.sip_method,
        "cseq": event.cseq,
        "content_type": event.content_type,
        "datamode": event.datamode,
        "warnings": event.warnings or [],
        "raw": event.raw_text,
    }


def call_detail(db: Session, who: Principal, call_id: int) -> dict[str, Any]:
    """The call page's data; ``NotFound`` when ``who`` may not see the call."""
    call = visible_call(db, who, call_id)
    origin = call.started_at
    (item,) = call_items(db, [call])
    silence = _channel_silence(list(call.recordings))
    segments = []
    for segment, base in zip(call.segments, item["segments"], strict=True):
        segments.append(
            {
                **base,
                "start_offset_s": _offset(segment.started_at, origin),
                "end_offset_s": _offset(segment.ended_at, origin),
                "participants": [
                    {
                        "aor": p.aor,
                        "name": p.name,
                        "address": p.address,
                        "joined_offset_s": _offset(p.associated_at, origin),
                        "left_offset_s": _offset(p.disassociated_at, origin),
                    }
                    for p in segment.participants
                ],
            }
        )
    ends = [s["end_offset_s"] for s in segments]
    item.update(
        segments=segments,
        timeline_s=max(ends) if ends and None not in ends else None,
        streams=[s for seg in call.segments for s in _segment_streams(seg, origin, silence)],
        recordings=[
            _recording_detail(r, base, origin)
            for r, base in zip(call.recordings, item["recordings"], strict=True)
        ],
        groups=sorted(
            db.scalars(
                select(Group.name)
                .join(CallGroup, CallGroup.group_id == Group.id)
                .where(CallGroup.call_id == call.id)
            )
        ),
    )
    if who.is_admin:
        events = db.scalars(
            select(MetadataEvent)
            .join(Segment, Segment.id == MetadataEvent.segment_id)
            .where(Segment.call_id == call.id)
            .order_by(MetadataEvent.received_at, MetadataEvent.id)
        )
        item["metadata_events"] = [_metadata_json(e) for e in events]
    return item
