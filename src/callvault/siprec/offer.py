"""What a SIPREC INVITE, re-INVITE or UPDATE body holds (RFC 7866 sections 6 and 8).

``read_offer`` splits the body (``sip.multipart``), takes the first ``application/sdp``
part and the first rs-metadata part (``application/rs-metadata+xml``, or the
``application/rs-metadata`` spelling several SRCs use, or any XML part with
``Content-Disposition: recording-session``), parses both and keeps every other part
(Cisco's ``application/gtd``, a second SDP) in ``ignored_parts``. Either may be absent:
an UPDATE can carry metadata alone, a pause re-INVITE SDP alone, and an INVITE without
a body asks the SRS to make the offer.

Errors: one type, ``OfferError``, whose ``status``/``reason`` are those of the failing
layer: 400 for a body that cannot be framed (``MultipartError``), an SDP that cannot be
parsed (``SdpError``) or refused metadata (``MetadataError``, the exception is chained
as ``__cause__``); 415 when the body has parts but none the SRS understands.
"""

from __future__ import annotations

from dataclasses import dataclass

from callvault.sdp.errors import SdpError
from callvault.sdp.session import SessionDescription
from callvault.sip.multipart import BodyPart, MultipartError, parse_body
from callvault.siprec.metadata import (
    MAX_METADATA_BYTES,
    MAX_METADATA_DEPTH,
    RecordingMetadata,
    parse_metadata,
)
from callvault.siprec.xmlsafety import MetadataError

__all__ = ["METADATA_TYPES", "OfferError", "SiprecOffer", "read_offer"]

SDP_TYPE = "application/sdp"
METADATA_TYPES = frozenset({"application/rs-metadata+xml", "application/rs-metadata"})


class OfferError(ValueError):
    """A SIPREC request body the SRS cannot use; answer ``status`` with ``reason``."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True, slots=True)
class SiprecOffer:
    """The parsed SDP and metadata of a request body, with the raw parts."""

    sdp: SessionDescription | None
    sdp_raw: bytes | None
    metadata: RecordingMetadata | None
    metadata_raw: bytes | None
    parts: tuple[BodyPart, ...]
    ignored_parts: tuple[BodyPart, ...] = ()

    def __repr__(self) -> str:
        return (
            f"<SiprecOffer sdp={self.sdp is not None} metadata={self.metadata is not None} "
            f"parts={len(self.parts)} ignored={len(self.ignored_parts)}>"
        )


def _is_metadata(part: BodyPart) -> bool:
    if part.mime_type in METADATA_TYPES:
        return True
    return part.disposition_type == "recording-session" and part.mime_type.endswith("xml")


def read_offer(
    content_type: str,
    body: bytes,
    *,
    disposition: str | None = None,
    max_metadata_bytes: int = MAX_METADATA_BYTES,
    max_metadata_depth: int = MAX_METADATA_DEPTH,
) -> SiprecOffer:
    """Read a SIPREC request body; ``disposition`` is the message's own
    Content-Disposition (used when the body is not multipart). Raises ``OfferError``."""
    try:
        parts = parse_body(content_type, body, disposition=disposition)
    except MultipartError as exc:
        raise OfferError(exc.reason, exc.status) from exc
    sdp_part = next((p for p in parts if p.mime_type == SDP_TYPE), None)
    metadata_part = next((p for p in parts if _is_metadata(p)), None)
    if parts and sdp_part is None and metadata_part is None:
        found = ", ".join(p.mime_type or "(none)" for p in parts)
        raise OfferError(f"no application/sdp or rs-metadata body part (got {found})", 415)
    sdp: SessionDescription | None = None
    if sdp_part is not None:
        try:
            sdp = SessionDescription.parse(sdp_part.body)
        except SdpError as exc:
            raise OfferError(exc.reason, exc.status) from exc
    metadata: RecordingMetadata | None = None
    if metadata_part is not None:
        try:
            metadata = parse_metadata(
                metadata_part.body, max_bytes=max_metadata_bytes, max_depth=max_metadata_depth
            )
        except MetadataError as exc:
            raise OfferError(exc.reason, exc.status) from exc
    used = (sdp_part, metadata_part)
    return SiprecOffer(
        sdp=sdp,
        sdp_raw=sdp_part.body if sdp_part is not None else None,
        metadata=metadata,
        metadata_raw=metadata_part.body if metadata_part is not None else None,
        parts=tuple(parts),
        ignored_parts=tuple(p for p in parts if not any(p is u for u in used)),
    )
