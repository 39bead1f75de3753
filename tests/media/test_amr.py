"""RFC 4867 AMR / AMR-WB payload parsing against real encoder output and by hand."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callvault.media.amr import (
    AMR_NB_FRAME_BITS,
    AMR_WB_FRAME_BITS,
    NO_DATA,
    SPEECH_LOST,
    AmrFrame,
    AmrPayload,
    AmrPayloadError,
)
from tests.media.payloads import (
    AMR_BITS,
    AMR_WB_BITS,
    amr_storage_frames,
    amr_wb_storage_frames,
    pack_amr,
    tone,
)

FUZZ = Path(__file__).resolve().parents[2] / "fuzz" / "fuzz_amr.py"
NB_SPEECH = tone(440, 0.2, 8000)  # ten 20 ms frames
WB_SPEECH = tone(440, 0.2, 16000)


def storage(frame_type: int, data: bytes, quality: bool = True) -> bytes:
    return bytes((frame_type << 3 | quality << 2,)) + data


# --- frame sizes are the 3GPP ones --------------------------------------------------------


def test_frame_bit_tables_match_the_test_side_restatement() -> None:
    assert AMR_NB_FRAME_BITS == AMR_BITS
    assert AMR_WB_FRAME_BITS == AMR_WB_BITS


@pytest.mark.parametrize("mode", range(8))
def test_nb_encoder_frame_sizes_match_the_table(mode: int) -> None:
    frames = amr_storage_frames(NB_SPEECH, mode=mode)
    assert {frame[0] for frame in frames} == {mode << 3 | 0x04}
    assert {len(frame) for frame in frames} == {1 + (AMR_NB_FRAME_BITS[mode] + 7) // 8}


@pytest.mark.parametrize("mode", range(9))
def test_wb_encoder_frame_sizes_match_the_table(mode: int) -> None:
    frames = amr_wb_storage_frames(WB_SPEECH, mode=mode)
    assert {frame[0] for frame in frames} == {mode << 3 | 0x04}
    assert {len(frame) for frame in frames} == {1 + (AMR_WB_FRAME_BITS[mode] + 7) // 8}


# --- real encoder frames through the independent packer and back ----------------------


def roundtrip(frames: list[bytes], *, wideband: bool, octet_aligned: bool, cmr: int) -> None:
    payload = pack_amr(frames, wideband=wideband, octet_aligned=octet_aligned, cmr=cmr)
    parsed = AmrPayload.parse(payload, wideband=wideband, octet_aligned=octet_aligned)
    assert parsed.cmr == cmr
    assert [frame.storage() for frame in parsed.frames] == frames
    assert bytes(parsed) == payload


@pytest.mark.parametrize("octet_aligned", [False, True])
@pytest.mark.parametrize("mode", range(8))
def test_every_nb_mode_round_trips(mode: int, octet_aligned: bool) -> None:
    frames = amr_storage_frames(NB_SPEECH, mode=mode)
    for frame in frames:
        roundtrip([frame], wideband=False, octet_aligned=octet_aligned, cmr=15)
    roundtrip(frames[:3], wideband=False, octet_aligned=octet_aligned, cmr=mode)


@pytest.mark.parametrize("octet_aligned", [False, True])
@pytest.mark.parametrize("mode", range(9))
def test_every_wb_mode_round_trips(mode: int, octet_aligned: bool) -> None:
    frames = amr_wb_storage_frames(WB_SPEECH, mode=mode)
    for frame in frames:
        roundtrip([frame], wideband=True, octet_aligned=octet_aligned, cmr=15)
    roundtrip(frames[:3], wideband=True, octet_aligned=octet_aligned, cmr=mode)


@pytest.mark.parametrize("octet_aligned", [False, True])
def test_dtx_gives_sid_and_no_data_frames_that_parse(octet_aligned: bool) -> None:
    pcm = list(tone(440, 0.5, 8000)) + [0] * 8000
    nb = amr_storage_frames(pcm, mode=7, dtx=True)
    assert {frame[0] >> 3 for frame in nb} == {7, 8, 15}
    wb = amr_wb_storage_frames(list(tone(440, 0.5, 16000)) + [0] * 16000, mode=2, dtx=True)
    assert {frame[0] >> 3 for frame in wb} == {2, 9, 15}
    for frames, wideband in ((nb, False), (wb, True)):
        for start in range(0, len(frames) - 2, 3):
            roundtrip(
                frames[start : start + 3], wideband=wideband, octet_aligned=octet_aligned, cmr=15
            )


# --- hand-made payloads: exact bits ----------------------------------------------------


def test_bandwidth_efficient_layout_by_hand() -> None:
    # CMR 1, one SID frame (FT 8, Q 1): 4 + 6 + 39 bits = 49 -> 7 bytes.
    sid = bytes.fromhex("fffffffffe")  # 39 one bits, padded with a zero bit
    payload = AmrPayload(1, (AmrFrame(8, True, sid),))
    bits = "0001" + "0" + "1000" + "1" + "1" * 39
    expected = int(bits + "0" * 7, 2).to_bytes(7, "big")
    assert bytes(payload) == expected
    assert AmrPayload.parse(expected) == payload


def test_octet_aligned_layout_by_hand() -> None:
    frames = (AmrFrame(NO_DATA, True, b""), AmrFrame(8, False, b"\x01\x02\x03\x04\x00"))
    payload = AmrPayload(7, frames, octet_aligned=True)
    assert bytes(payload) == bytes([0x70, 0x80 | 15 << 3 | 4, 8 << 3, 1, 2, 3, 4, 0])
    parsed = AmrPayload.parse(bytes(payload), octet_aligned=True)
    assert parsed == payload
    assert parsed.frames[1].storage() == bytes([8 << 3, 1, 2, 3, 4, 0])
    assert repr(parsed) == "<AmrPayload AMR octet CMR=7 FT=15,8>"
    assert repr(parsed.frames[1]) == "<AmrFrame FT=8 Q=0 5 bytes>"


def test_octet_aligned_ignores_reserved_and_padding_bits() -> None:
    # Reserved CMR bits and the ToC's two P bits set: RFC 4867 says ignore them.
    parsed = AmrPayload.parse(bytes([0xFF, 15 << 3 | 4 | 3]), octet_aligned=True)
    assert parsed.cmr == 15
    assert parsed.frames == (AmrFrame(NO_DATA, True, b""),)


def test_speech_lost_is_a_wideband_frame_type_only() -> None:
    lost = bytes([0xF0 | 0, SPEECH_LOST << 3 | 4])  # octet-aligned, CMR 15
    assert AmrPayload.parse(lost, wideband=True, octet_aligned=True).frames == (
        AmrFrame(SPEECH_LOST, True, b""),
    )
    with pytest.raises(AmrPayloadError) as error:
        AmrPayload.parse(lost, octet_aligned=True)
    assert str(error.value) == "AMR payload has reserved frame type 14 in entry 1"


def test_cmr_is_reported_as_sent() -> None:
    for cmr in range(16):
        payload = pack_amr([storage(NO_DATA, b"")], cmr=cmr)
        assert AmrPayload.parse(payload).cmr == cmr


# --- exact errors ----------------------------------------------------------------------

NB_122 = amr_storage_frames(NB_SPEECH, mode=7)[3]


ONE_122 = pack_amr([NB_122])
ONE_122_OA = pack_amr([NB_122], octet_aligned=True)
TRUNCATED = "AMR payload is truncated: frame 1 needs"


@pytest.mark.parametrize(
    ("payload", "wideband", "octet_aligned", "message"),
    [
        (b"", False, False, "AMR payload is empty"),
        (b"\xf0", False, False, "AMR payload ends inside table of contents entry 1"),
        (b"\xf0", False, True, "AMR payload ends inside table of contents entry 1"),
        # F bit set on the only entry: the second entry is missing.
        (bytes([0xF0, 0xBC]), False, True, "AMR payload ends inside table of contents entry 2"),
        (ONE_122[:-1], False, False, f"{TRUNCATED} 244 bits, 238 left"),
        (ONE_122_OA[:-1], False, True, f"{TRUNCATED} 31 bytes, 30 left"),
        (ONE_122 + b"\0", False, False, "AMR payload has 1 bytes after its last frame"),
        (ONE_122_OA + b"\0\0", False, True, "AMR payload has 2 bytes after its last frame"),
        (bytes([0xF4, 0x80]), False, False, "AMR payload has reserved frame type 9 in entry 1"),
        (bytes([0xF0, 0x64]), True, True, "AMR-WB payload has reserved frame type 12 in entry 1"),
        (
            bytes([0xF0, 0xB8, 0x58]),
            False,
            True,
            "AMR payload has reserved frame type 11 in entry 2",
        ),
    ],
)
def test_bad_payloads_raise_exact_errors(
    payload: bytes, wideband: bool, octet_aligned: bool, message: str
) -> None:
    with pytest.raises(AmrPayloadError) as error:
        AmrPayload.parse(payload, wideband=wideband, octet_aligned=octet_aligned)
    assert str(error.value) == message


def test_inconsistent_frames_cannot_be_packed() -> None:
    with pytest.raises(AmrPayloadError) as error:
        bytes(AmrPayload(15, ()))
    assert str(error.value) == "AMR payload needs at least one frame"
    with pytest.raises(AmrPayloadError) as error:
        bytes(AmrPayload(15, (AmrFrame(7, True, b"\0" * 30),)))
    assert str(error.value) == "frame 1 of type 7 needs 31 bytes, has 30"
    with pytest.raises(AmrPayloadError) as error:
        bytes(AmrPayload(15, (AmrFrame(10, True, b""),)))
    assert str(error.value) == "frame 1 has reserved frame type 10"


# --- properties ------------------------------------------------------------------------


@st.composite
def payloads(draw: st.DrawFn) -> AmrPayload:
    wideband = draw(st.booleans())
    table = AMR_WB_FRAME_BITS if wideband else AMR_NB_FRAME_BITS
    valid = [*range(len(table)), NO_DATA] + ([SPEECH_LOST] if wideband else [])
    frames = []
    for _ in range(draw(st.integers(1, 4))):
        frame_type = draw(st.sampled_from(valid))
        bits = table[frame_type] if frame_type < len(table) else 0
        value = draw(st.integers(0, (1 << bits) - 1)) if bits else 0
        size = (bits + 7) // 8
        data = (value << (size * 8 - bits)).to_bytes(size, "big") if bits else b""
        frames.append(AmrFrame(frame_type, draw(st.booleans()), data))
    return AmrPayload(draw(st.integers(0, 15)), tuple(frames), wideband, draw(st.booleans()))


@given(payloads())
def test_bytes_then_parse_is_identity(payload: AmrPayload) -> None:
    data = bytes(payload)
    mode = {"wideband": payload.wideband, "octet_aligned": payload.octet_aligned}
    assert AmrPayload.parse(data, **mode) == payload
    frames = [frame.storage() for frame in payload.frames]
    assert (
        pack_amr(
            frames, wideband=payload.wideband, octet_aligned=payload.octet_aligned, cmr=payload.cmr
        )
        == data
    )


@given(st.binary(max_size=80), st.booleans(), st.booleans())
def test_parse_raises_nothing_but_amr_payload_error(
    data: bytes, wideband: bool, octet: bool
) -> None:
    try:
        parsed = AmrPayload.parse(data, wideband=wideband, octet_aligned=octet)
    except AmrPayloadError:
        return
    # Whatever parses has a whole number of frames of the right sizes.
    table = AMR_WB_FRAME_BITS if wideband else AMR_NB_FRAME_BITS
    for frame in parsed.frames:
        bits = table[frame.frame_type] if frame.frame_type < len(table) else 0
        assert len(frame.data) == (bits + 7) // 8


# --- fuzz target -----------------------------------------------------------------------


def test_fuzz_target_finds_nothing_in_a_short_run() -> None:
    result = subprocess.run(
        [sys.executable, str(FUZZ), "--runs", "3000", "--seed", "7"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "3000 inputs, no failure"


def test_fuzz_target_reports_a_crash(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("fuzz_amr", FUZZ)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    def broken(data: bytes) -> None:
        raise KeyError("boom")

    assert module.run(3, 0, broken) == 1
    assert capsys.readouterr().out.startswith("iteration 0: KeyError: 'boom'\ninput: b")
