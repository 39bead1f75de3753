"""G.711 µ-law and A-law (ITU-T G.711) by table lookup.

Decoding is one NumPy index into a 256-entry int16 table per payload; the tables are
built from the G.711 segment rules at import and give the same 16-bit values as the
classic Sun reference code (and Python's old ``audioop``). Encoding (tests, the
benchmark sender, WAV with A-law/µ-law later) indexes a 65536-entry table with the
16-bit sample itself. ``UlawDecoder`` / ``AlawDecoder`` implement
``callvault.media.timeline.Decoder``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = [
    "ALAW_TO_PCM",
    "ULAW_TO_PCM",
    "AlawDecoder",
    "UlawDecoder",
    "decode_alaw",
    "decode_ulaw",
    "encode_alaw",
    "encode_ulaw",
]

Pcm = npt.NDArray[np.int16]


def _ulaw_decode_table() -> Pcm:
    code = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (code >> 4) & 0x07
    mantissa = code & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(code & 0x80, -magnitude, magnitude).astype(np.int16)


def _alaw_decode_table() -> Pcm:
    code = np.arange(256, dtype=np.int32) ^ 0x55
    exponent = (code >> 4) & 0x07
    mantissa = code & 0x0F
    magnitude = np.where(
        exponent == 0,
        (mantissa << 4) + 8,
        ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0),
    )
    # In A-law a set sign bit means positive.
    return np.where(code & 0x80, magnitude, -magnitude).astype(np.int16)


def _segment(value: npt.NDArray[np.int32], ends: tuple[int, ...]) -> npt.NDArray[np.int32]:
    """Index of the first segment end >= value (len(ends) when above all)."""
    return np.searchsorted(np.array(ends, dtype=np.int32), value, side="left").astype(np.int32)


def _ulaw_encode_table() -> npt.NDArray[np.uint8]:
    pcm = np.arange(65536, dtype=np.int32)
    pcm = np.where(pcm >= 32768, pcm - 65536, pcm) >> 2  # 14-bit magnitude domain
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.where(pcm < 0, -pcm, pcm), 8159) + 0x21
    seg = _segment(magnitude, (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF))
    code = np.where(seg >= 8, 0x7F, (seg << 4) | ((magnitude >> (seg + 1)) & 0x0F))
    return ((code ^ mask) & 0xFF).astype(np.uint8)


def _alaw_encode_table() -> npt.NDArray[np.uint8]:
    pcm = np.arange(65536, dtype=np.int32)
    pcm = np.where(pcm >= 32768, pcm - 65536, pcm) >> 3  # 13-bit domain
    mask = np.where(pcm >= 0, 0xD5, 0x55)
    magnitude = np.where(pcm >= 0, pcm, -pcm - 1)
    seg = _segment(magnitude, (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF))
    shift = np.where(seg < 2, 1, seg)
    code = np.where(seg >= 8, 0x7F, (seg << 4) | ((magnitude >> shift) & 0x0F))
    return ((code ^ mask) & 0xFF).astype(np.uint8)


ULAW_TO_PCM: Pcm = _ulaw_decode_table()
ALAW_TO_PCM: Pcm = _alaw_decode_table()
_PCM_TO_ULAW = _ulaw_encode_table()
_PCM_TO_ALAW = _alaw_encode_table()


def decode_ulaw(payload: bytes) -> Pcm:
    return ULAW_TO_PCM[np.frombuffer(payload, dtype=np.uint8)]


def decode_alaw(payload: bytes) -> Pcm:
    return ALAW_TO_PCM[np.frombuffer(payload, dtype=np.uint8)]


def _as_index(pcm: npt.ArrayLike) -> npt.NDArray[np.uint16]:
    samples = np.asarray(pcm)
    if samples.dtype != np.int16:
        samples = np.clip(np.rint(samples), -32768, 32767).astype(np.int16)
    return samples.view(np.uint16)


def encode_ulaw(pcm: npt.ArrayLike) -> bytes:
    """µ-law bytes for 16-bit samples (other dtypes are rounded and clipped first)."""
    return _PCM_TO_ULAW[_as_index(pcm)].tobytes()


def encode_alaw(pcm: npt.ArrayLike) -> bytes:
    """A-law bytes for 16-bit samples (other dtypes are rounded and clipped first)."""
    return _PCM_TO_ALAW[_as_index(pcm)].tobytes()


class UlawDecoder:
    """PCMU (RTP payload type 0 by default): one byte per sample at 8 kHz."""

    sample_rate = 8000

    def decode(self, payload: bytes) -> Pcm:
        return decode_ulaw(payload)


class AlawDecoder:
    """PCMA (RTP payload type 8 by default): one byte per sample at 8 kHz."""

    sample_rate = 8000

    def decode(self, payload: bytes) -> Pcm:
        return decode_alaw(payload)
