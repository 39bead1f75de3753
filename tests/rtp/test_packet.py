"""RTP packet parsing, building and RTP/RTCP demultiplexing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callvault.rtp.packet import (
    RtpError,
    RtpHeader,
    RtpHeaderExtension,
    RtpPacket,
    is_rtcp,
    parse_rtp,
    parse_rtp_header,
    peek_rtp,
)

# PCMU, seq 1, ts 160, SSRC 0xdeadbeef, four payload bytes.
SIMPLE = bytes.fromhex("80000001000000a0deadbeef" + "fffe7f00")

# V=2 P X CC=2, M PT=96, seq 65535, ts 2^32-1, two CSRCs, a one-word 0xBEDE extension,
# payload "abc" and three bytes of padding.
FULL = bytes.fromhex(
    "b2e0ffff" "ffffffff" "01020304"  # fixed header
    "11111111" "22222222"  # CSRC list
    "bede0001" "10aa0000"  # extension: profile, length 1 word, data
    "616263"  # payload
    "000003"  # padding, the last octet counts it
)  # fmt: skip


def test_parse_simple_pcmu_packet() -> None:
    packet = parse_rtp(SIMPLE)
    assert packet == RtpPacket(
        payload_type=0,
        sequence_number=1,
        timestamp=160,
        ssrc=0xDEADBEEF,
        payload=b"\xff\xfe\x7f\x00",
    )
    assert bytes(packet) == SIMPLE
    assert repr(packet) == "<RtpPacket pt=0 seq=1 ts=160 ssrc=0xdeadbeef 4 bytes>"


def test_parse_packet_with_every_header_feature() -> None:
    packet = RtpPacket.parse(FULL)
    assert packet.marker is True
    assert packet.payload_type == 96
    assert packet.sequence_number == 65535
    assert packet.timestamp == 0xFFFFFFFF
    assert packet.ssrc == 0x01020304
    assert packet.csrc == (0x11111111, 0x22222222)
    assert packet.extension == RtpHeaderExtension(0xBEDE, bytes.fromhex("10aa0000"))
    assert packet.payload == b"abc"
    assert packet.padding_size == 3
    assert bytes(packet) == FULL
    assert repr(packet.extension) == "<RtpHeaderExtension profile=0xbede 4 bytes>"


def test_header_says_where_the_payload_is_without_copying() -> None:
    header = RtpHeader.parse(FULL)
    assert header == RtpHeader(
        payload_type=96,
        sequence_number=65535,
        timestamp=0xFFFFFFFF,
        ssrc=0x01020304,
        marker=True,
        csrc=(0x11111111, 0x22222222),
        extension=RtpHeaderExtension(0xBEDE, bytes.fromhex("10aa0000")),
        padding_size=3,
        payload_offset=28,
        payload_length=3,
    )
    assert FULL[header.payload_offset :][: header.payload_length] == b"abc"
    simple = parse_rtp_header(SIMPLE)
    assert (simple.payload_offset, simple.payload_length, simple.marker) == (12, 4, False)


def test_trailing_data_is_payload() -> None:
    assert parse_rtp(SIMPLE + b"xyz").payload == b"\xff\xfe\x7f\x00xyz"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "RTP packet too short: 0 bytes, need at least 12"),
        (SIMPLE[:11], "RTP packet too short: 11 bytes, need at least 12"),
        (b"\x40" + SIMPLE[1:], "RTP version must be 2, got 1"),
        (b"\xc0" + SIMPLE[1:], "RTP version must be 2, got 3"),
        (SIMPLE[:1] + b"\xc8" + SIMPLE[2:], "packet type 200 is RTCP, not RTP (RFC 5761)"),
        (
            b"\x83" + SIMPLE[1:12] + b"\x00" * 8,
            "RTP packet truncated: 3 CSRC entries need 24 bytes, have 20",
        ),
        (
            b"\x90" + SIMPLE[1:12] + b"\xbe\xde",
            "RTP packet truncated: header extension needs 16 bytes, have 14",
        ),
        (
            b"\x90" + SIMPLE[1:12] + b"\xbe\xde\x00\x02" + b"\x00" * 4,
            "RTP packet truncated: header extension of 2 words needs 24 bytes, have 20",
        ),
        (b"\xa0" + SIMPLE[1:12], "RTP padding length 0 is invalid with 0 bytes after the header"),
        (
            b"\xa0" + SIMPLE[1:12] + b"\x00\x00",
            "RTP padding length 0 is invalid with 2 bytes after the header",
        ),
        (
            b"\xa0" + SIMPLE[1:12] + b"\x00\x05",
            "RTP padding length 5 is invalid with 2 bytes after the header",
        ),
    ],
)
def test_invalid_packets_have_exact_messages(data: bytes, message: str) -> None:
    with pytest.raises(RtpError) as info:
        parse_rtp(data)
    assert str(info.value) == message
    with pytest.raises(RtpError) as info:
        parse_rtp_header(data)
    assert str(info.value) == message


def test_every_truncation_parses_or_raises_rtp_error() -> None:
    for cut in range(len(FULL)):
        try:
            packet = parse_rtp(FULL[:cut])
        except RtpError:
            continue
        # A cut that still parses can only have lost payload or changed its padding.
        assert packet.csrc == (0x11111111, 0x22222222)
        assert packet.extension is not None


@pytest.mark.parametrize(
    ("packet", "message"),
    [
        (RtpPacket(128, 0, 0, 0), "RTP payload type 128 is not in 0..127"),
        (
            RtpPacket(0, 0, 0, 0, csrc=tuple(range(16))),
            "RTP CSRC list has 16 entries, at most 15 fit",
        ),
        (
            RtpPacket(0, 0, 0, 0, extension=RtpHeaderExtension(1, b"abc")),
            "RTP header extension data is 3 bytes, not a multiple of 4",
        ),
        (RtpPacket(0, 0, 0, 0, padding_size=256), "RTP padding size 256 is not in 0..255"),
    ],
)
def test_building_an_impossible_packet_fails(packet: RtpPacket, message: str) -> None:
    with pytest.raises(RtpError) as info:
        bytes(packet)
    assert str(info.value) == message


def test_peek_agrees_with_parse() -> None:
    assert peek_rtp(SIMPLE) == (0, 1, 160, 0xDEADBEEF)
    assert peek_rtp(FULL) == (96, 65535, 0xFFFFFFFF, 0x01020304)


@pytest.mark.parametrize(
    "data",
    [b"", SIMPLE[:11], b"\x40" + SIMPLE[1:], SIMPLE[:1] + b"\xc9" + SIMPLE[2:]],
)
def test_peek_rejects_what_is_not_rtp(data: bytes) -> None:
    assert peek_rtp(data) is None


@pytest.mark.parametrize(
    ("second_octet", "expected"),
    [(0, False), (8, False), (0x80 | 101, False), (191, False), (192, True), (200, True),
     (201, True), (204, True), (223, True), (224, False)],
)  # fmt: skip
def test_rtcp_demultiplexing_follows_rfc5761(second_octet: int, expected: bool) -> None:
    data = bytes([0x80, second_octet]) + SIMPLE[2:]
    assert is_rtcp(data) is expected
    assert (peek_rtp(data) is None) is expected


def test_is_rtcp_needs_version_2_and_four_bytes() -> None:
    assert not is_rtcp(b"\x80\xc8\x00")
    assert not is_rtcp(b"\x40\xc8\x00\x01")


packets = st.builds(
    RtpPacket,
    payload_type=st.integers(0, 127).filter(lambda pt: not 64 <= pt <= 95),
    sequence_number=st.integers(0, 0xFFFF),
    timestamp=st.integers(0, 0xFFFFFFFF),
    ssrc=st.integers(0, 0xFFFFFFFF),
    payload=st.binary(max_size=300),
    marker=st.booleans(),
    csrc=st.lists(st.integers(0, 0xFFFFFFFF), max_size=15).map(tuple),
    extension=st.none()
    | st.builds(
        RtpHeaderExtension,
        st.integers(0, 0xFFFF),
        st.binary(max_size=40).map(lambda b: b[: len(b) - len(b) % 4]),
    ),
    padding_size=st.integers(0, 255),
)


@given(packets)
def test_round_trip(packet: RtpPacket) -> None:
    data = bytes(packet)
    assert parse_rtp(data) == packet
    header = parse_rtp_header(data)
    assert data[header.payload_offset :][: header.payload_length] == packet.payload
    assert peek_rtp(data) == (
        packet.payload_type,
        packet.sequence_number,
        packet.timestamp,
        packet.ssrc,
    )


@given(st.binary(max_size=200))
def test_parse_raises_only_rtp_error(data: bytes) -> None:
    try:
        packet = parse_rtp(data)
    except RtpError:
        return
    assert peek_rtp(data) is not None
    assert len(packet.payload) <= len(data) - 12
