"""G.711 tables against the ITU-T reference values and Python's audioop."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest

from callvault.media.g711 import (
    ALAW_TO_PCM,
    ULAW_TO_PCM,
    AlawDecoder,
    UlawDecoder,
    decode_alaw,
    decode_ulaw,
    encode_alaw,
    encode_ulaw,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # the CPython reference implementation (removed in 3.13)

Encode = Callable[[npt.ArrayLike], bytes]
Decode = Callable[[bytes], npt.NDArray[np.int16]]
ALL_CODES = bytes(range(256))
ALL_SAMPLES = np.arange(-32768, 32768, dtype=np.int16)


def test_ulaw_decode_table_matches_audioop() -> None:
    reference = np.frombuffer(audioop.ulaw2lin(ALL_CODES, 2), dtype=np.int16)
    assert ULAW_TO_PCM.dtype == np.int16
    assert np.array_equal(ULAW_TO_PCM, reference)


def test_alaw_decode_table_matches_audioop() -> None:
    reference = np.frombuffer(audioop.alaw2lin(ALL_CODES, 2), dtype=np.int16)
    assert np.array_equal(ALAW_TO_PCM, reference)


def test_encoders_match_audioop_for_every_sample() -> None:
    raw = ALL_SAMPLES.tobytes()
    assert encode_ulaw(ALL_SAMPLES) == audioop.lin2ulaw(raw, 2)
    assert encode_alaw(ALL_SAMPLES) == audioop.lin2alaw(raw, 2)


@pytest.mark.parametrize(
    ("code", "value"),
    [(0xFF, 0), (0x7F, 0), (0x80, 32124), (0x00, -32124), (0xF0, 120), (0x70, -120),
     (0xEF, 132), (0x8F, 16764)],
)  # fmt: skip
def test_known_ulaw_values(code: int, value: int) -> None:
    assert decode_ulaw(bytes([code]))[0] == value


@pytest.mark.parametrize(
    ("code", "value"),
    [(0xD5, 8), (0x55, -8), (0xAA, 32256), (0x2A, -32256), (0xD4, 24), (0xC5, 264)],
)
def test_known_alaw_values(code: int, value: int) -> None:
    assert decode_alaw(bytes([code]))[0] == value


def test_silence_encodes_to_the_usual_idle_codes() -> None:
    assert encode_ulaw(np.zeros(3, dtype=np.int16)) == b"\xff\xff\xff"
    assert encode_alaw(np.zeros(3, dtype=np.int16)) == b"\xd5\xd5\xd5"


@pytest.mark.parametrize(
    ("encode", "decode"), [(encode_ulaw, decode_ulaw), (encode_alaw, decode_alaw)]
)
def test_every_code_survives_decode_then_encode(encode: Encode, decode: Decode) -> None:
    decoded = decode(ALL_CODES)
    again = decode(encode(decoded))
    assert np.array_equal(again, decoded)


@pytest.mark.parametrize(
    ("encode", "decode"), [(encode_ulaw, decode_ulaw), (encode_alaw, decode_alaw)]
)
def test_quantisation_error_is_within_the_segment_step(encode: Encode, decode: Decode) -> None:
    error = np.abs(decode(encode(ALL_SAMPLES)).astype(np.int32) - ALL_SAMPLES)
    # The largest step of either law is 1024 (A-law) at full scale: half of it plus clipping.
    assert error.max() <= 1024
    small = np.abs(ALL_SAMPLES.astype(np.int32)) < 256
    assert error[small].max() <= 16


def test_float_input_is_rounded_and_clipped() -> None:
    assert encode_ulaw(np.array([0.4, 1e9, -1e9])) == encode_ulaw(
        np.array([0, 32767, -32768], dtype=np.int16)
    )


def test_decoders_follow_the_protocol() -> None:
    for decoder, code in ((UlawDecoder(), 0x80), (AlawDecoder(), 0xAA)):
        assert decoder.sample_rate == 8000
        pcm = decoder.decode(bytes([code]) * 160)
        assert pcm.dtype == np.int16 and len(pcm) == 160
