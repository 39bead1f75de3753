"""SIPREC recording metadata (RFC 7865): the model and ``merge`` of partial updates.

The model is what the SRS keeps of an rs-metadata body: the recording session and group
ids, the media streams (id -> SDP label), the participants (AOR, name, the streams each
sends and receives), extension data kept verbatim, and vendor correlation ids
(BroadWorks tracking ids, Avaya UCID, ...). ``parse_metadata`` (``reader.py``) builds
it from the three shapes seen in the field: RFC 7865 (``urn:ietf:params:xml:ns:
recording:1``), the pre-RFC draft (``urn:ietf:params:xml:ns:recording``: AudioCodes,
Oracle, Sonus, Metaswitch) and the older ``urn:ietf:params:xml:ns:siprec`` shape
(BroadWorks, Webex).

A ``partial`` body (RFC 7865 6.1) only says what changed; ``merge`` applies it to the
picture so far. A participantstreamassoc replaces that participant's send/recv sets
(the RFC example signals hold by leaving ``<send>`` out), a disassociate-time ends a
participant's part in the session.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TypeVar

from callvault.siprec.xmlsafety import MetadataError

__all__ = [
    "DATAMODES",
    "MAX_METADATA_BYTES",
    "MAX_METADATA_DEPTH",
    "NS_DRAFT",
    "NS_LEGACY",
    "NS_RFC7865",
    "BroadWorksInfo",
    "ExtensionData",
    "MetadataError",
    "MetadataParticipant",
    "MetadataStream",
    "RecordingMetadata",
    "merge",
    "parse_metadata",
]

NS_RFC7865 = "urn:ietf:params:xml:ns:recording:1"
NS_DRAFT = "urn:ietf:params:xml:ns:recording"
NS_LEGACY = "urn:ietf:params:xml:ns:siprec"
DATAMODES = ("complete", "partial")
MAX_METADATA_BYTES = 256 * 1024
MAX_METADATA_DEPTH = 32

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class MetadataStream:
    """A ``<stream>``: its id, the SDP ``a=label`` it describes, its session."""

    stream_id: str
    label: str | None
    session_id: str | None = None
    mode: str | None = None


@dataclass(frozen=True, slots=True)
class MetadataParticipant:
    """A ``<participant>`` and the streams (ids) it sends and receives.

    ``has_stream_assoc`` tells a partial update that says nothing about streams from
    one whose participantstreamassoc is empty on purpose.
    """

    participant_id: str
    aor: str | None = None
    name: str | None = None
    sends: tuple[str, ...] = ()
    receives: tuple[str, ...] = ()
    associate_time: str | None = None
    disassociate_time: str | None = None
    has_stream_assoc: bool = False


@dataclass(frozen=True, slots=True)
class ExtensionData:
    """Vendor or standard extension data, verbatim.

    ``parent`` is the id of the group/session/participant/stream that holds it (or the
    ``parent`` attribute of a legacy ``<extensiondata>``; ``""`` at the top level);
    ``parent_kind`` is that element's name.
    """

    parent: str
    raw_xml: str
    parent_kind: str = ""


@dataclass(frozen=True, slots=True)
class BroadWorksInfo:
    """What BroadWorks / Webex put in ``broadWorksRecordingMetadata``."""

    service_provider_id: str | None = None
    group_id: str | None = None
    user_id: str | None = None
    ext_tracking_id: str | None = None
    call_id: str | None = None
    call_type: str | None = None
    calling_party_number: str | None = None
    called_party_number: str | None = None


@dataclass(frozen=True, slots=True)
class RecordingMetadata:
    """One rs-metadata body (or the merge of a snapshot and its partial updates).

    ``well_formed`` is False when the XML had to be repaired; ``warnings`` says how.
    ``correlation_ids`` are ``(kind, value)`` pairs such as ``("avaya_ucid", ...)``,
    ``("sip_call_id", ...)``, ``("broadworks_ext_tracking_id", ...)``.
    """

    namespace: str
    root_element: str
    datamode: str = "complete"
    recording_session_id: str | None = None
    group_id: str | None = None
    session_ids: tuple[str, ...] = ()
    sip_session_ids: tuple[str, ...] = ()
    start_time: str | None = None
    stop_time: str | None = None
    streams: tuple[MetadataStream, ...] = ()
    participants: tuple[MetadataParticipant, ...] = ()
    extensions: tuple[ExtensionData, ...] = ()
    broadworks: BroadWorksInfo | None = None
    correlation_ids: tuple[tuple[str, str], ...] = ()
    well_formed: bool = True
    warnings: tuple[str, ...] = ()
    recording_id: str | None = None

    def __repr__(self) -> str:
        return (
            f"<RecordingMetadata {self.datamode} session={self.recording_session_id!r} "
            f"streams={len(self.streams)} participants={len(self.participants)}>"
        )

    # -- lookups ----------------------------------------------------------------------
    def stream(self, stream_id: str) -> MetadataStream | None:
        return next((s for s in self.streams if s.stream_id == stream_id), None)

    def stream_for_label(self, label: str) -> MetadataStream | None:
        return next((s for s in self.streams if s.label == label), None)

    def label_of(self, stream_id: str) -> str | None:
        """The SDP label of a declared stream (``None`` if undeclared or unlabelled)."""
        stream = self.stream(stream_id)
        return stream.label if stream is not None else None

    def participant(self, participant_id: str) -> MetadataParticipant | None:
        return next((p for p in self.participants if p.participant_id == participant_id), None)

    def labels_sent_by(self, participant: MetadataParticipant | str) -> tuple[str, ...]:
        """Labels of the declared streams the participant sends (undeclared ids skipped)."""
        return self._labels(self._resolve(participant), sent=True)

    def labels_received_by(self, participant: MetadataParticipant | str) -> tuple[str, ...]:
        return self._labels(self._resolve(participant), sent=False)

    def participants_sending(self, label: str) -> tuple[MetadataParticipant, ...]:
        """Who sends the stream with this SDP label (several in a mixed stream)."""
        ids = {s.stream_id for s in self.streams if s.label == label}
        return tuple(p for p in self.participants if ids.intersection(p.sends))

    def participants_receiving(self, label: str) -> tuple[MetadataParticipant, ...]:
        ids = {s.stream_id for s in self.streams if s.label == label}
        return tuple(p for p in self.participants if ids.intersection(p.receives))

    def correlation(self, kind: str) -> str | None:
        """The first correlation id of ``kind`` (``"avaya_ucid"``, ...), or ``None``."""
        return next((value for k, value in self.correlation_ids if k == kind), None)

    @property
    def avaya_ucid(self) -> str | None:
        return self.correlation("avaya_ucid")

    def _resolve(self, participant: MetadataParticipant | str) -> MetadataParticipant | None:
        if isinstance(participant, MetadataParticipant):
            return participant
        return self.participant(participant)

    def _labels(self, participant: MetadataParticipant | None, *, sent: bool) -> tuple[str, ...]:
        if participant is None:
            return ()
        ids = participant.sends if sent else participant.receives
        labels = (self.label_of(stream_id) for stream_id in ids)
        return tuple(label for label in labels if label is not None)


def parse_metadata(
    data: bytes,
    *,
    max_bytes: int = MAX_METADATA_BYTES,
    max_depth: int = MAX_METADATA_DEPTH,
) -> RecordingMetadata:
    """Parse an rs-metadata body; raises ``MetadataError`` (status 400, exact reason).

    Implemented in ``callvault.siprec.reader``; defined here so that the model and its
    parser are imported from one place.
    """
    from callvault.siprec.reader import read_metadata  # reader imports this module

    return read_metadata(data, max_bytes=max_bytes, max_depth=max_depth)


def merge(previous: RecordingMetadata, update: RecordingMetadata) -> RecordingMetadata:
    """Apply ``update`` to ``previous``: a complete snapshot replaces, a partial one adds
    and changes participants, streams and associations (RFC 7865 6.1)."""
    if update.datamode != "partial":
        return update
    participants = {p.participant_id: p for p in previous.participants}
    for changed in update.participants:
        old = participants.get(changed.participant_id)
        participants[changed.participant_id] = (
            _merge_participant(old, changed) if old is not None else _fresh(changed)
        )
    streams = {s.stream_id: s for s in previous.streams}
    for stream in update.streams:
        old_stream = streams.get(stream.stream_id)
        if old_stream is not None:
            stream = replace(
                stream,
                label=stream.label if stream.label is not None else old_stream.label,
                session_id=stream.session_id or old_stream.session_id,
                mode=stream.mode or old_stream.mode,
            )
        streams[stream.stream_id] = stream
    return replace(
        previous,
        recording_session_id=update.recording_session_id or previous.recording_session_id,
        group_id=update.group_id or previous.group_id,
        session_ids=_union(previous.session_ids, update.session_ids),
        sip_session_ids=_union(previous.sip_session_ids, update.sip_session_ids),
        start_time=update.start_time or previous.start_time,
        stop_time=update.stop_time or previous.stop_time,
        streams=tuple(streams.values()),
        participants=tuple(participants.values()),
        extensions=previous.extensions + update.extensions,
        broadworks=update.broadworks or previous.broadworks,
        correlation_ids=_union(previous.correlation_ids, update.correlation_ids),
        well_formed=previous.well_formed and update.well_formed,
        warnings=previous.warnings + update.warnings,
        recording_id=update.recording_id or previous.recording_id,
    )


def _fresh(participant: MetadataParticipant) -> MetadataParticipant:
    if participant.disassociate_time is not None:
        return replace(participant, sends=(), receives=())
    return participant


def _merge_participant(old: MetadataParticipant, new: MetadataParticipant) -> MetadataParticipant:
    sends, receives = old.sends, old.receives
    if new.has_stream_assoc:
        sends, receives = new.sends, new.receives
    disassociated = old.disassociate_time
    if new.disassociate_time is not None:
        # A participant that left the session sends and receives nothing any more.
        disassociated = new.disassociate_time
        sends, receives = (), ()
    elif new.associate_time is not None:
        disassociated = None
    return MetadataParticipant(
        participant_id=old.participant_id,
        aor=new.aor if new.aor is not None else old.aor,
        name=new.name if new.name is not None else old.name,
        sends=sends,
        receives=receives,
        associate_time=new.associate_time or old.associate_time,
        disassociate_time=disassociated,
        has_stream_assoc=old.has_stream_assoc or new.has_stream_assoc,
    )


def _union(first: tuple[_T, ...], second: tuple[_T, ...]) -> tuple[_T, ...]:
    return first + tuple(item for item in second if item not in first)
