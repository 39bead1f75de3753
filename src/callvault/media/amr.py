"""AMR and AMR-WB RTP payloads (RFC 4867): codec mode request, table of contents, frames.

``AmrPayload.parse`` reads one RTP payload in either packing, bandwidth-efficient (the
default, bit-packed) or octet-aligned (``octet-align=1``), and returns its CMR and its
frames. Each ``AmrFrame`` holds the frame's speech bits exactly as the payload carries
them: the payload format keeps the codec's class A/B/C sorted bit order, so unpacking is
a shift to an octet boundary, with no reordering. ``AmrFrame.storage()`` gives the frame
in the file "storage format" of RFC 4867 section 5 (a ``FT << 3 | Q << 2`` header octet
and the zero-padded bits), which is what FFmpeg's amrnb/amrwb decoders take.
``bytes(payload)`` packs a payload again in its own mode.

Frame CRCs, robust sorting and interleaving (octet-aligned extras that are rare in
practice) are not parsed here: a payload using them reads as garbage, so the decoder
registry refuses such streams up front. Bad input raises ``AmrPayloadError`` and nothing
else. No I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AMR_NB_FRAME_BITS",
    "AMR_WB_FRAME_BITS",
    "NB_SID",
    "NO_CMR",
    "NO_DATA",
    "SPEECH_LOST",
    "WB_SID",
    "AmrFrame",
    "AmrPayload",
    "AmrPayloadError",
]

#: Speech bits per frame type: AMR modes 0-7 (4.75 to 12.2 kbit/s), then SID (type 8).
AMR_NB_FRAME_BITS = (95, 103, 118, 134, 148, 159, 204, 244, 39)
#: AMR-WB modes 0-8 (6.60 to 23.85 kbit/s), then SID (type 9).
AMR_WB_FRAME_BITS = (132, 177, 253, 285, 317, 365, 397, 461, 477, 40)
NB_SID = 8
WB_SID = 9
SPEECH_LOST = 14  # AMR-WB only: a frame the sender knows was lost; no bits
NO_DATA = 15  # no frame in this slot (DTX or not sent); no bits
NO_CMR = 15  # codec mode request "no request"


class AmrPayloadError(ValueError):
    """An AMR or AMR-WB payload cannot be parsed; the message says where and why."""


def _frame_bits(frame_type: int, wideband: bool) -> int | None:
    """Bits of a frame type, or None for a type RFC 4867 says to discard the packet for."""
    table = AMR_WB_FRAME_BITS if wideband else AMR_NB_FRAME_BITS
    if frame_type < len(table):
        return table[frame_type]
    if frame_type == NO_DATA or (wideband and frame_type == SPEECH_LOST):
        return 0
    return None


@dataclass(frozen=True, slots=True)
class AmrFrame:
    """One frame slot: its type, quality bit (False: damaged) and speech bits padded to
    whole octets (the padding is zero from bandwidth-efficient payloads, as received from
    octet-aligned ones; decoders ignore it)."""

    frame_type: int
    quality: bool
    data: bytes

    def storage(self) -> bytes:
        """The frame in storage format: header octet ``FT << 3 | Q << 2``, then data."""
        return bytes((self.frame_type << 3 | self.quality << 2,)) + self.data

    def __repr__(self) -> str:
        bad = "" if self.quality else " Q=0"
        return f"<AmrFrame FT={self.frame_type}{bad} {len(self.data)} bytes>"


@dataclass(frozen=True, slots=True)
class AmrPayload:
    """One RTP payload: the codec mode request and its frames, in payload order."""

    cmr: int
    frames: tuple[AmrFrame, ...]
    wideband: bool = False
    octet_aligned: bool = False

    @classmethod
    def parse(
        cls, data: bytes, *, wideband: bool = False, octet_aligned: bool = False
    ) -> AmrPayload:
        if not data:
            raise AmrPayloadError("AMR payload is empty")
        if octet_aligned:
            cmr, frames = _parse_octet_aligned(data, wideband)
        else:
            cmr, frames = _parse_bandwidth_efficient(data, wideband)
        return cls(cmr, frames, wideband, octet_aligned)

    def __bytes__(self) -> bytes:
        if not self.frames:
            raise AmrPayloadError("AMR payload needs at least one frame")
        for index, frame in enumerate(self.frames, 1):
            bits = _frame_bits(frame.frame_type, self.wideband)
            if bits is None:
                raise AmrPayloadError(f"frame {index} has reserved frame type {frame.frame_type}")
            if len(frame.data) != (bits + 7) // 8:
                raise AmrPayloadError(
                    f"frame {index} of type {frame.frame_type} needs {(bits + 7) // 8} bytes,"
                    f" has {len(frame.data)}"
                )
        last = len(self.frames) - 1
        if self.octet_aligned:
            head = [(self.cmr & 0x0F) << 4]
            head += [
                (i < last) << 7 | frame.frame_type << 3 | frame.quality << 2
                for i, frame in enumerate(self.frames)
            ]
            return bytes(head) + b"".join(frame.data for frame in self.frames)
        value, size = self.cmr & 0x0F, 4
        for i, frame in enumerate(self.frames):
            value = value << 6 | (i < last) << 5 | frame.frame_type << 1 | frame.quality
            size += 6
        for frame in self.frames:
            bits = _frame_bits(frame.frame_type, self.wideband) or 0
            padded = int.from_bytes(frame.data, "big") >> (len(frame.data) * 8 - bits)
            value, size = value << bits | padded, size + bits
        pad = -size % 8
        return (value << pad).to_bytes((size + pad) // 8, "big")

    def __repr__(self) -> str:
        kind = ("AMR-WB" if self.wideband else "AMR") + (" octet" if self.octet_aligned else "")
        types = ",".join(str(f.frame_type) for f in self.frames)
        return f"<AmrPayload {kind} CMR={self.cmr} FT={types}>"


def _check_type(frame_type: int, wideband: bool, index: int) -> int:
    bits = _frame_bits(frame_type, wideband)
    if bits is None:
        # RFC 4867 section 4.3.2: discard the packet, or frame sync is lost.
        codec = "AMR-WB" if wideband else "AMR"
        raise AmrPayloadError(
            f"{codec} payload has reserved frame type {frame_type} in entry {index}"
        )
    return bits


def _parse_bandwidth_efficient(data: bytes, wideband: bool) -> tuple[int, tuple[AmrFrame, ...]]:
    # The whole payload as one integer: each field is a shift and a mask, no bit loop.
    value = int.from_bytes(data, "big")
    total = len(data) * 8
    pos = 4
    cmr = value >> (total - 4)
    toc: list[tuple[int, bool, int]] = []
    more = True
    while more:
        if pos + 6 > total:
            raise AmrPayloadError(f"AMR payload ends inside table of contents entry {len(toc) + 1}")
        entry = (value >> (total - pos - 6)) & 0x3F
        pos += 6
        more = bool(entry & 0x20)
        frame_type = (entry >> 1) & 0x0F
        toc.append((frame_type, bool(entry & 1), _check_type(frame_type, wideband, len(toc) + 1)))
    frames = []
    for index, (frame_type, quality, bits) in enumerate(toc, 1):
        if pos + bits > total:
            raise AmrPayloadError(
                f"AMR payload is truncated: frame {index} needs {bits} bits, {total - pos} left"
            )
        size = (bits + 7) // 8
        chunk = (value >> (total - pos - bits)) & ((1 << bits) - 1)
        pos += bits
        frames.append(AmrFrame(frame_type, quality, (chunk << (size * 8 - bits)).to_bytes(size)))
    _check_end(len(data), (pos + 7) // 8)
    return cmr, tuple(frames)


def _parse_octet_aligned(data: bytes, wideband: bool) -> tuple[int, tuple[AmrFrame, ...]]:
    cmr = data[0] >> 4  # the low four bits are reserved: ignored
    pos = 1
    toc: list[tuple[int, bool, int]] = []
    more = True
    while more:
        if pos >= len(data):
            raise AmrPayloadError(f"AMR payload ends inside table of contents entry {len(toc) + 1}")
        entry = data[pos]
        pos += 1
        more = bool(entry & 0x80)
        frame_type = (entry >> 3) & 0x0F
        toc.append(
            (frame_type, bool(entry & 0x04), _check_type(frame_type, wideband, len(toc) + 1))
        )
    frames = []
    for index, (frame_type, quality, bits) in enumerate(toc, 1):
        size = (bits + 7) // 8
        if pos + size > len(data):
            raise AmrPayloadError(
                f"AMR payload is truncated: frame {index} needs {size} bytes,"
                f" {len(data) - pos} left"
            )
        frames.append(AmrFrame(frame_type, quality, data[pos : pos + size]))
        pos += size
    _check_end(len(data), pos)
    return cmr, tuple(frames)


def _check_end(length: int, used: int) -> None:
    # Extra octets mean the packing does not match the SDP (or the payload is not AMR):
    # taking the frames anyway would decode noise.
    if length > used:
        raise AmrPayloadError(f"AMR payload has {length - used} bytes after its last frame")
