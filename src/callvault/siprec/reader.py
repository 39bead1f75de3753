"""Read an rs-metadata XML document into ``RecordingMetadata``.

The reader matches elements by local name, case-insensitively, in any of the three
recording namespaces (or none), because SRCs disagree on spelling: ``dataMode``,
``tns:recording``, ``stream_id`` vs ``id``, ``participant_id`` vs ``id``. Stream
associations come from RFC 7865 ``participantstreamassoc`` and from the legacy
``<send>``/``<recv>`` inside ``<participant>`` (with or without ``<id>`` children).
Elements in other namespaces and ``<extensiondata>`` are kept verbatim as extensions
and searched for vendor correlation ids. Unknown elements in a recording namespace
(Intrado's ``<channel>``, ``<role>``) are ignored.

Parsing itself (defusedxml, size and depth bounds, repair) is ``xmlsafety``'s job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from xml.etree.ElementTree import Element

from callvault.siprec.metadata import (
    DATAMODES,
    NS_DRAFT,
    NS_LEGACY,
    NS_RFC7865,
    BroadWorksInfo,
    ExtensionData,
    MetadataParticipant,
    MetadataStream,
    RecordingMetadata,
)
from callvault.siprec.xmlsafety import MetadataError, ParsedXml, parse_xml

__all__ = ["read_metadata"]

_RECORDING_NAMESPACES = frozenset({NS_RFC7865, NS_DRAFT, NS_LEGACY, ""})
_ROOTS = ("recording", "recording_metadata")
_WHITESPACE = re.compile(r"\s+")

# Extension element (lower-case local name) -> correlation id kind.
_CORRELATION_ELEMENTS = {
    "avayaucid": "avaya_ucid",
    "ucid": "avaya_ucid",
    "genesysuuid": "genesys_uuid",
    "gcid": "sonus_gcid",
}


def _split(tag: str) -> tuple[str, str]:
    """``"{ns}local"`` -> ``(ns, local)``."""
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return "", tag


def _name(element: Element) -> str:
    return _split(element.tag)[1].lower()


def _text(element: Element | None) -> str | None:
    """Trimmed text content, ``None`` for a missing element."""
    if element is None:
        return None
    return "".join(element.itertext()).strip()


def _child(element: Element, name: str) -> Element | None:
    return next((c for c in element if _name(c) == name), None)


def _child_text(element: Element, name: str) -> str | None:
    return _text(_child(element, name))


def _attr(element: Element, *names: str) -> str | None:
    """The first present attribute of ``names`` (an empty value counts as present)."""
    for name in names:
        value = element.get(name)
        if value is not None:
            return value.strip()
    return None


def _stream_refs(element: Element) -> list[str]:
    """The stream ids in a ``<send>``/``<recv>``: its text, or its ``<id>`` children."""
    ids = [text for c in element if _name(c) == "id" and (text := _text(c))]
    if ids:
        return ids
    text = (element.text or "").strip()
    return [text] if text else []


@dataclass(slots=True)
class _Participant:
    participant_id: str
    aor: str | None = None
    name: str | None = None
    sends: list[str] = field(default_factory=list)
    receives: list[str] = field(default_factory=list)
    associate_time: str | None = None
    disassociate_time: str | None = None
    has_stream_assoc: bool = False

    def freeze(self) -> MetadataParticipant:
        return MetadataParticipant(
            self.participant_id,
            self.aor,
            self.name,
            tuple(self.sends),
            tuple(self.receives),
            self.associate_time,
            self.disassociate_time,
            self.has_stream_assoc,
        )


@dataclass(slots=True)
class _Reader:
    parsed: ParsedXml
    warnings: list[str]
    namespaces: frozenset[str]
    datamode: str | None = None
    recording_id: str | None = None
    group_id: str | None = None
    session_ids: list[str] = field(default_factory=list)
    assoc_session_ids: list[str] = field(default_factory=list)
    sip_session_ids: list[str] = field(default_factory=list)
    start_time: str | None = None
    stop_time: str | None = None
    streams: list[MetadataStream] = field(default_factory=list)
    participants: dict[str, _Participant] = field(default_factory=dict)
    extensions: list[ExtensionData] = field(default_factory=list)
    broadworks: BroadWorksInfo | None = None
    correlation_ids: list[tuple[str, str]] = field(default_factory=list)

    def read(self, root: Element) -> None:
        self.recording_id = _attr(root, "id")
        for child in root:
            if self._is_extension(child):
                self._extension(child, _attr(child, "parent") or "", "recording")
                continue
            handler = _HANDLERS.get(_name(child))
            if handler is not None:
                handler(self, child)

    def _is_extension(self, element: Element) -> bool:
        namespace, local = _split(element.tag)
        return local.lower() == "extensiondata" or namespace not in self.namespaces

    def participant(self, participant_id: str) -> _Participant:
        found = self.participants.get(participant_id)
        if found is None:
            found = self.participants[participant_id] = _Participant(participant_id)
        return found

    # -- element handlers ---------------------------------------------------------------
    def _datamode(self, element: Element) -> None:
        self.datamode = (_text(element) or "").lower()

    def _legacy_recording(self, element: Element) -> None:
        self.recording_id = self.recording_id or _attr(element, "id")

    def _group(self, element: Element) -> None:
        group_id = _attr(element, "group_id", "id") or ""
        self.group_id = self.group_id or group_id or None
        self._extensions_in(element, group_id, "group")

    def _session(self, element: Element) -> None:
        session_id = _attr(element, "session_id", "id")
        if session_id:
            self.session_ids.append(session_id)
        for child in element:
            name = _name(child)
            if name == "sipsessionid":
                # The RFC 7865 example breaks this value across lines.
                value = _WHITESPACE.sub("", _text(child) or "")
                if value:
                    self.sip_session_ids.append(value)
            elif name == "start-time":
                self.start_time = self.start_time or _text(child)
            elif name in ("stop-time", "end-time"):
                self.stop_time = self.stop_time or _text(child)
        self._extensions_in(element, session_id or "", "session")

    def _session_recording_assoc(self, element: Element) -> None:
        session_id = _attr(element, "session_id", "session")
        if session_id:
            self.assoc_session_ids.append(session_id)

    def _participant(self, element: Element) -> None:
        participant_id = _attr(element, "participant_id", "id")
        if participant_id is None:
            self.warnings.append("rs-metadata: <participant> without an id ignored")
            return
        draft = self.participant(participant_id)
        for child in element:
            name = _name(child)
            if name == "nameid":
                draft.aor = _attr(child, "aor") or draft.aor
                name_element = _child(child, "name")
                if name_element is not None:
                    # Kept as sent: Sonus sends a single space, Intrado an empty name.
                    draft.name = "".join(name_element.itertext())
            elif name == "aor":
                draft.aor = _text(child) or draft.aor
            elif name == "name":
                draft.name = "".join(child.itertext())
            elif name in ("send", "recv"):
                draft.has_stream_assoc = True
                target = draft.sends if name == "send" else draft.receives
                target.extend(_stream_refs(child))
            elif name == "associate-time":
                draft.associate_time = _text(child)
            elif name == "disassociate-time":
                draft.disassociate_time = _text(child)
        self._extensions_in(element, participant_id, "participant")

    def _participant_session_assoc(self, element: Element) -> None:
        participant_id = _attr(element, "participant_id", "participant")
        if participant_id is None:
            return
        draft = self.participant(participant_id)
        associate = _child_text(element, "associate-time")
        disassociate = _child_text(element, "disassociate-time")
        draft.associate_time = associate or draft.associate_time
        draft.disassociate_time = disassociate or draft.disassociate_time

    def _participant_stream_assoc(self, element: Element) -> None:
        participant_id = _attr(element, "participant_id", "participant")
        if participant_id is None:
            self.warnings.append("rs-metadata: <participantstreamassoc> without an id ignored")
            return
        draft = self.participant(participant_id)
        draft.has_stream_assoc = True
        for child in element:
            name = _name(child)
            if name in ("send", "recv"):
                target = draft.sends if name == "send" else draft.receives
                target.extend(_stream_refs(child))

    def _stream(self, element: Element) -> None:
        stream_id = _attr(element, "stream_id", "id")
        if stream_id is None:
            self.warnings.append("rs-metadata: <stream> without an id ignored")
            return
        self.streams.append(
            MetadataStream(
                stream_id=stream_id,
                label=_child_text(element, "label"),
                session_id=_attr(element, "session_id", "session"),
                mode=_child_text(element, "mode"),
            )
        )
        self._extensions_in(element, stream_id, "stream")

    # -- extensions -----------------------------------------------------------------------
    def _extensions_in(self, element: Element, parent: str, kind: str) -> None:
        for child in element:
            if self._is_extension(child):
                self._extension(child, parent, kind)

    def _extension(self, element: Element, parent: str, kind: str) -> None:
        self.extensions.append(ExtensionData(parent, self.parsed.raw(element), kind))
        for node in element.iter():
            name = _name(node)
            kind_of_id = _CORRELATION_ELEMENTS.get(name)
            if kind_of_id is not None:
                value = (_text(node) or "").split(";", 1)[0].strip()
                self._correlate(kind_of_id, value)
            elif name == "calldata":
                self._correlate("sip_call_id", _child_text(node, "callid"))
            elif name == "header" and (node.get("label") or "").lower() == "call-id":
                self._correlate("sip_call_id", _child_text(node, "value"))
            elif name == "broadworksrecordingmetadata":
                self._broadworks(node)

    def _broadworks(self, element: Element) -> None:
        call_types = _child(element, "calltype")
        # <callType> holds one element named after the kind of call (termCall, ...).
        call_type = next(iter(call_types), None) if call_types is not None else None
        info = BroadWorksInfo(
            service_provider_id=_child_text(element, "serviceproviderid"),
            group_id=_child_text(element, "groupid"),
            user_id=_child_text(element, "userid"),
            ext_tracking_id=_child_text(element, "exttrackingid"),
            call_id=_child_text(element, "callid"),
            call_type=_split(call_type.tag)[1] if call_type is not None else None,
            calling_party_number=(
                _child_text(call_type, "callingpartynumber") if call_type is not None else None
            ),
            called_party_number=(
                _child_text(call_type, "calledpartynumber") if call_type is not None else None
            ),
        )
        self.broadworks = self.broadworks or info
        self._correlate("broadworks_ext_tracking_id", info.ext_tracking_id)
        self._correlate("broadworks_call_id", info.call_id)

    def _correlate(self, kind: str, value: str | None) -> None:
        if value and (kind, value) not in self.correlation_ids:
            self.correlation_ids.append((kind, value))

    # -- result ---------------------------------------------------------------------------
    def result(self, namespace: str, root_name: str, well_formed: bool) -> RecordingMetadata:
        datamode = self.datamode
        if datamode is None:
            self.warnings.append("rs-metadata: no <datamode>, taken as complete")
            datamode = "complete"
        elif datamode not in DATAMODES:
            self.warnings.append(f"rs-metadata: unknown datamode {datamode!r}, taken as complete")
            datamode = "complete"
        session_ids = self.session_ids or self.assoc_session_ids
        owners = {pid: "participant" for pid in self.participants}
        owners.update((s.stream_id, "stream") for s in self.streams)
        owners.update((sid, "session") for sid in session_ids)
        if self.group_id:
            owners[self.group_id] = "group"
        # A legacy top-level <extensiondata parent="..."> belongs to the element it names.
        extensions = [
            replace(e, parent_kind=owners[e.parent])
            if e.parent_kind == "recording" and e.parent in owners
            else e
            for e in self.extensions
        ]
        return RecordingMetadata(
            namespace=namespace,
            root_element=root_name,
            datamode=datamode,
            recording_session_id=session_ids[0] if session_ids else None,
            group_id=self.group_id,
            session_ids=tuple(dict.fromkeys(session_ids)),
            sip_session_ids=tuple(dict.fromkeys(self.sip_session_ids)),
            start_time=self.start_time,
            stop_time=self.stop_time,
            streams=tuple(self.streams),
            participants=tuple(p.freeze() for p in self.participants.values()),
            extensions=tuple(extensions),
            broadworks=self.broadworks,
            correlation_ids=tuple(self.correlation_ids),
            well_formed=well_formed,
            warnings=tuple(self.warnings),
            recording_id=self.recording_id,
        )


_HANDLERS = {
    "datamode": _Reader._datamode,
    "recording": _Reader._legacy_recording,
    "group": _Reader._group,
    "session": _Reader._session,
    "sessionrecordingassoc": _Reader._session_recording_assoc,
    "participant": _Reader._participant,
    "participantsessionassoc": _Reader._participant_session_assoc,
    "participantstreamassoc": _Reader._participant_stream_assoc,
    "stream": _Reader._stream,
}


def read_metadata(data: bytes, *, max_bytes: int, max_depth: int) -> RecordingMetadata:
    """Parse and read an rs-metadata body; raises ``MetadataError`` (status 400)."""
    parsed = parse_xml(data, max_bytes=max_bytes, max_depth=max_depth)
    namespace, root_name = _split(parsed.root.tag)
    if root_name.lower() not in _ROOTS:
        raise MetadataError(f"rs-metadata rejected: root element <{root_name}> is not <recording>")
    warnings = list(parsed.warnings)
    if namespace not in _RECORDING_NAMESPACES:
        warnings.append(f"rs-metadata: unknown namespace {namespace!r}")
    # A root in an unknown namespace is still read: its own namespace is the schema's.
    reader = _Reader(parsed, warnings, _RECORDING_NAMESPACES | {namespace})
    reader.read(parsed.root)
    return reader.result(namespace, root_name, parsed.well_formed)
