"""Payload types and the recorder's codec choice.

``STATIC_PAYLOAD_TYPES`` is the RFC 3551 section 6 table: an m-line may list a static
payload type without an ``a=rtpmap`` line and the name comes from here. Note G722: its
RTP clock rate is 8000 although it samples at 16 kHz (RFC 3551 4.5.2), so SDP says
``G722/8000``.

``choose_codec`` picks, for one offered m-line, the first format in the offerer's order
that the recorder can decode, plus telephone-event and comfort noise at the same RTP
clock rate (RFC 4733, RFC 3389): the SRS records those alongside the voice.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "RECORDABLE_CODECS",
    "STATIC_PAYLOAD_TYPES",
    "Codec",
    "CodecChoice",
    "canonical_codec_name",
    "choose_codec",
]


@dataclass(frozen=True, slots=True)
class Codec:
    """One payload format of an m-line, in the m-line's order.

    ``declared`` is False when the name comes from the RFC 3551 static table because
    the m-line has no ``a=rtpmap`` for it.
    """

    payload_type: int
    encoding: str
    clock_rate: int
    channels: int = 1
    fmtp: str | None = None
    declared: bool = True

    @property
    def name(self) -> str:
        """The encoding in its usual spelling (``"PCMU"``, ``"opus"``, ``"AMR-WB"``)."""
        return canonical_codec_name(self.encoding)

    def rtpmap_value(self) -> str:
        """``"0 PCMU/8000"`` / ``"111 opus/48000/2"``: the a=rtpmap value."""
        text = f"{self.payload_type} {self.encoding}/{self.clock_rate}"
        if self.channels != 1:
            text += f"/{self.channels}"
        return text


# RFC 3551 table 4 (audio) and table 5 (video): PT -> (encoding, clock rate, channels).
STATIC_PAYLOAD_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("PCMU", 8000, 1),
    3: ("GSM", 8000, 1),
    4: ("G723", 8000, 1),
    5: ("DVI4", 8000, 1),
    6: ("DVI4", 16000, 1),
    7: ("LPC", 8000, 1),
    8: ("PCMA", 8000, 1),
    9: ("G722", 8000, 1),
    10: ("L16", 44100, 2),
    11: ("L16", 44100, 1),
    12: ("QCELP", 8000, 1),
    13: ("CN", 8000, 1),
    14: ("MPA", 90000, 1),
    15: ("G728", 8000, 1),
    16: ("DVI4", 11025, 1),
    17: ("DVI4", 22050, 1),
    18: ("G729", 8000, 1),
    25: ("CelB", 90000, 1),
    26: ("JPEG", 90000, 1),
    28: ("nv", 90000, 1),
    31: ("H261", 90000, 1),
    32: ("MPV", 90000, 1),
    33: ("MP2T", 90000, 1),
    34: ("H263", 90000, 1),
}

# What the media layer can decode; the value is the usual spelling of the name.
RECORDABLE_CODECS: dict[str, str] = {
    "pcmu": "PCMU",
    "pcma": "PCMA",
    "g722": "G722",
    "g729": "G729",
    "opus": "opus",
    "gsm": "GSM",
    "amr": "AMR",
    "amr-wb": "AMR-WB",
}
_TELEPHONE_EVENT = "telephone-event"
_COMFORT_NOISE = "cn"


def canonical_codec_name(encoding: str) -> str:
    """The usual spelling of an encoding name (names are case-insensitive in SDP)."""
    lowered = encoding.lower()
    if lowered == _TELEPHONE_EVENT:
        return _TELEPHONE_EVENT
    if lowered == _COMFORT_NOISE:
        return "CN"
    return RECORDABLE_CODECS.get(lowered, encoding)


@dataclass(frozen=True, slots=True)
class CodecChoice:
    """The voice codec chosen for one m-line and the companions accepted with it."""

    codec: Codec
    telephone_event: Codec | None = None
    comfort_noise: Codec | None = None


def choose_codec(codecs: list[Codec]) -> CodecChoice | None:
    """The first recordable codec in offer order, or ``None`` when there is none."""
    voice = next((c for c in codecs if c.encoding.lower() in RECORDABLE_CODECS), None)
    if voice is None:
        return None
    rate = voice.clock_rate
    events = next(
        (c for c in codecs if c.encoding.lower() == _TELEPHONE_EVENT and c.clock_rate == rate),
        None,
    )
    noise = next(
        (c for c in codecs if c.encoding.lower() == _COMFORT_NOISE and c.clock_rate == rate),
        None,
    )
    return CodecChoice(voice, events, noise)
