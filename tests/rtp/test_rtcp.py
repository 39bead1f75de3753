"""Compound RTCP parsing and building."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callvault.rtp.rtcp import (
    Bye,
    ReceiverReport,
    ReportBlock,
    RtcpError,
    RtcpPacket,
    SdesChunk,
    SenderReport,
    SourceDescription,
    parse_rtcp,
)

SR = bytes.fromhex(
    "81c8000c" "11223344"  # V=2 RC=1 SR, length 12 words, sender SSRC
    "e9b0f0a0" "80000000"  # NTP timestamp: 3920687264.5 s since 1900
    "00012345" "00000064" "00003e80"  # RTP timestamp, 100 packets, 16000 octets
    "55667788" "10ffffff" "0001000a"  # report block: SSRC, 16/256 lost, cumulative -1
    "00000020" "b0f0a080" "00010000"  # jitter 32, LSR, DLSR
)  # fmt: skip
SDES = bytes.fromhex("81ca0004 11223344 0109") + b"user@host" + b"\x00"
BYE = bytes.fromhex("81cb0003 11223344 07") + b"goodbye"
APP = bytes.fromhex("80cc0002 11223344") + b"name"
RR_PADDED = bytes.fromhex("a0c90002 11223344 00000004")


def test_sender_report_with_sdes_compound() -> None:
    sr, sdes = parse_rtcp(SR + SDES)
    assert sr == SenderReport(
        ssrc=0x11223344,
        ntp_timestamp=0xE9B0F0A0_80000000,
        rtp_timestamp=0x12345,
        packet_count=100,
        octet_count=16000,
        reports=(ReportBlock(0x55667788, 16, -1, 0x1000A, 32, 0xB0F0A080, 0x10000),),
    )
    assert isinstance(sr, SenderReport)
    assert sr.ntp_seconds == 3920687264.5
    assert sr.unix_time == 3920687264.5 - 2208988800
    assert repr(sr) == "<SenderReport ssrc=0x11223344 ntp=3920687264.500000 rtp=74565 reports=1>"
    assert isinstance(sdes, SourceDescription)
    assert sdes.chunks[0].ssrc == 0x11223344
    assert sdes.chunks[0].cname == "user@host"
    assert bytes(sr) + bytes(sdes) == SR + SDES


def test_bye_app_and_padding() -> None:
    assert parse_rtcp(RR_PADDED + APP + BYE) == [
        ReceiverReport(0x11223344),
        Bye((0x11223344,), "goodbye"),
    ]
    assert bytes(Bye((0x11223344,), "goodbye")) == BYE


def test_feedback_and_xr_are_skipped() -> None:
    rtpfb = bytes.fromhex("81cd00021122334455667788")
    xr = bytes.fromhex("80cf000111223344")
    assert parse_rtcp(rtpfb + xr + BYE) == [Bye((0x11223344,), "goodbye")]


def test_bye_without_reason_and_sdes_without_cname() -> None:
    assert parse_rtcp(bytes.fromhex("82cb00020000000100000002")) == [Bye((1, 2))]
    (sdes,) = parse_rtcp(bytes.fromhex("81ca00020000000102010000"))
    assert isinstance(sdes, SourceDescription)
    assert sdes.chunks == (SdesChunk(1, ((2, b"\x00"),)),)
    assert sdes.chunks[0].cname is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x81\xc8", "RTCP packet too short: 2 bytes, need at least 4"),
        (bytes.fromhex("41c80000"), "RTCP version must be 2, got 1 at offset 0"),
        (
            SR + b"\x81\xca\x00",
            "RTCP packet truncated: 3 bytes left at offset 52, need a 4-byte header",
        ),
        (
            b"\x81\xc8\x00\x0d" + SR[4:],
            "RTCP packet type 200 at offset 0 declares 56 bytes, only 52 left",
        ),
        (SR + bytes.fromhex("41ca0000"), "RTCP version must be 2, got 1 at offset 52"),
        (b"\x81\xc8\x00\x06" + SR[4:28], "RTCP SR with 1 report blocks needs 52 bytes, has 28"),
        (bytes.fromhex("81c9000111223344"), "RTCP RR with 1 report blocks needs 32 bytes, has 8"),
        (bytes.fromhex("a0c9000111223300"), "RTCP padding length 0 is invalid in a 8-byte packet"),
        (bytes.fromhex("a0c9000111223309"), "RTCP padding length 9 is invalid in a 8-byte packet"),
        (bytes.fromhex("82ca00021122334400000000"), "RTCP SDES chunk 2 of 2 is missing"),
        (bytes.fromhex("81ca00021122334401026162"), "RTCP SDES chunk 1 has no end-of-list item"),
        (
            bytes.fromhex("81ca00021122334401090000"),
            "RTCP SDES item type 1 in chunk 1 is truncated",
        ),
        (bytes.fromhex("82cb000111223344"), "RTCP BYE with 2 sources needs 12 bytes, has 8"),
        (bytes.fromhex("81cb00021122334405616263"), "RTCP BYE reason of 5 bytes is truncated"),
    ],
)
def test_invalid_rtcp_has_exact_messages(data: bytes, message: str) -> None:
    with pytest.raises(RtcpError) as info:
        parse_rtcp(data)
    assert str(info.value) == message


def test_every_truncation_of_a_compound_packet_fails_cleanly() -> None:
    data = SR + SDES + BYE
    boundaries = {0, len(SR), len(SR + SDES)}
    for cut in range(1, len(data)):
        if cut in boundaries:
            assert len(parse_rtcp(data[:cut])) == [0, len(SR), len(SR + SDES)].index(cut)
            continue
        with pytest.raises(RtcpError):
            parse_rtcp(data[:cut])


def test_building_impossible_packets_fails() -> None:
    with pytest.raises(RtcpError, match="RTCP BYE reason is 256 bytes, at most 255 fit"):
        bytes(Bye((1,), "x" * 256))
    with pytest.raises(RtcpError, match="RTCP count 32 does not fit in 5 bits"):
        bytes(Bye(tuple(range(32))))


u32 = st.integers(0, 0xFFFFFFFF)
blocks = st.builds(
    ReportBlock,
    u32,
    st.integers(0, 255),
    st.integers(-(2**23), 2**23 - 1),
    u32,
    u32,
    u32,
    u32,
)
report_lists = st.lists(blocks, max_size=31).map(tuple)
rtcp_packets: st.SearchStrategy[RtcpPacket] = st.one_of(
    st.builds(SenderReport, u32, st.integers(0, 2**64 - 1), u32, u32, u32, report_lists),
    st.builds(ReceiverReport, u32, report_lists),
    st.builds(
        SourceDescription,
        st.lists(
            st.builds(
                SdesChunk,
                u32,
                st.lists(st.tuples(st.integers(1, 255), st.binary(max_size=255)), max_size=4).map(
                    tuple
                ),
            ),
            max_size=31,
        ).map(tuple),
    ),
    st.builds(
        Bye,
        st.lists(u32, max_size=31).map(tuple),
        st.none() | st.text(max_size=60).filter(lambda s: len(s.encode()) <= 255),
    ),
)


@given(st.lists(rtcp_packets, min_size=1, max_size=4))
def test_round_trip(packets: list[RtcpPacket]) -> None:
    assert parse_rtcp(b"".join(map(bytes, packets))) == packets


@given(st.binary(max_size=200))
def test_parse_raises_only_rtcp_error(data: bytes) -> None:
    with contextlib.suppress(RtcpError):
        parse_rtcp(data)
