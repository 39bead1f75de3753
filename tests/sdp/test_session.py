"""Tests for callvault.sdp.session: parsing, serialising and the derived properties."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callvault.sdp import Connection, MediaDescription, Origin, SdpError, SessionDescription
from callvault.sdp.codecs import STATIC_PAYLOAD_TYPES

FIXTURES = Path(__file__).parent / "fixtures"
GOLDEN = sorted(p for p in FIXTURES.glob("*.sdp") if not p.stem.endswith("_invalid"))
INVALID = {
    "rfc8866_example_invalid.sdp": "Bad m= line: 'audio 49180'",
    "ipv6_srtp_offer_invalid.sdp": "Bad o= line: '- 4711 IN IP6 2001:db8::10'",
}


@pytest.mark.parametrize("path", GOLDEN, ids=[p.stem for p in GOLDEN])
def test_golden_round_trip(path: Path) -> None:
    data = path.read_bytes()
    sdp = SessionDescription.parse(data)
    assert bytes(sdp) == data
    assert SessionDescription.parse(str(sdp)) == sdp


def test_every_golden_fixture_has_an_invalid_twin() -> None:
    assert sorted(INVALID) == sorted(f"{p.stem}_invalid.sdp" for p in GOLDEN)


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_twin(name: str) -> None:
    with pytest.raises(SdpError) as info:
        SessionDescription.parse((FIXTURES / name).read_bytes())
    assert str(info.value) == INVALID[name]
    assert info.value.status == 400


def test_rfc8866_example() -> None:
    sdp = SessionDescription.parse((FIXTURES / "rfc8866_example.sdp").read_bytes())
    assert sdp.origin == Origin("jdoe", "3724394400", "3724394405", "IN", "IP4", "198.51.100.1")
    assert sdp.session_name == "Call to John Smith"
    assert sdp.lines[0] == ("i", "SDP Offer #1")
    audio, _, video = sdp.media
    assert str(audio.connection) == "IN IP4 198.51.100.1"
    assert video.connection == Connection("IN", "IP6", "2001:db8::2")
    assert video.rtpmap == {99: ("h263-1998", 90000, 1)}
    assert audio.rtpmap == {0: ("PCMU", 8000, 1)}
    assert audio.direction == "sendrecv"
    assert audio.label is None


def test_ipv6_srtp_offer() -> None:
    sdp = SessionDescription.parse((FIXTURES / "ipv6_srtp_offer.sdp").read_bytes())
    first, second = sdp.media
    assert first.connection == Connection("IN", "IP6", "2001:db8::10")
    assert second.connection == Connection("IN", "IP6", "2001:db8::11")
    assert first.direction == "sendonly"  # inherited from the session level
    assert first.explicit_direction is None
    assert second.direction == "inactive"
    assert second.is_paused and not first.is_paused
    assert [c.suite for c in first.crypto] == ["F8_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"]
    assert len(first.crypto[0].keys) == 2
    assert first.crypto[0].session_params == ("FEC_ORDER=FEC_SRTP",)
    assert first.fmtp == {101: "0-15"}
    assert [c.name for c in first.codecs] == ["PCMA", "PCMU", "telephone-event"]
    assert sdp.labels == ["1", "2"]


def test_static_payload_types_and_g722_clock_rate() -> None:
    sdp = SessionDescription.parse(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
        "m=audio 4000 RTP/AVP 9 18 3 96 97\r\na=rtpmap:97 AMR-WB/16000\r\n"
    )
    (media,) = sdp.media
    assert media.rtpmap == {
        9: ("G722", 8000, 1),
        18: ("G729", 8000, 1),
        3: ("GSM", 8000, 1),
        97: ("AMR-WB", 16000, 1),
    }
    assert [c.declared for c in media.codecs] == [False, False, False, True]
    assert media.declared_rtpmap == {97: ("AMR-WB", 16000, 1)}
    assert STATIC_PAYLOAD_TYPES[9] == ("G722", 8000, 1)


def test_lenient_parsing_of_vendor_quirks() -> None:
    text = (
        "v=0\n"
        "o=- 1 1 IN IP6 ::1\n"
        "m=audio 4000/2 RTP/AVP 0 0 x\n"
        "c=IN IP6 [2001:db8::5]\n"
        "a=ptime:20.0   \n"
        "a=maxptime:bogus\n"
        "a=rtpmap:bad\n"
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:tooshort\n"
        "x=unknown line kept\n"
        "\n"
    )
    sdp = SessionDescription.parse(text)
    assert sdp.has_session_name is False
    (media,) = sdp.media
    assert (media.port, media.port_count, media.formats) == (4000, 2, ["0", "0", "x"])
    assert media.connection == Connection("IN", "IP6", "2001:db8::5")
    assert (media.ptime, media.maxptime) == (20, None)
    assert media.rtpmap == {0: ("PCMU", 8000, 1)}
    assert media.crypto == []
    assert media.lines == [("x", "unknown line kept")]
    assert str(sdp) == (
        "v=0\r\no=- 1 1 IN IP6 ::1\r\n"
        "m=audio 4000/2 RTP/AVP 0 0 x\r\nc=IN IP6 2001:db8::5\r\nx=unknown line kept\r\n"
        "a=ptime:20.0\r\na=maxptime:bogus\r\na=rtpmap:bad\r\n"
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:tooshort\r\n"
    )


@pytest.mark.parametrize(
    ("connection", "direction", "port", "paused"),
    [
        ("IN IP4 192.0.2.1", "sendonly", 4000, False),
        ("IN IP4 0.0.0.0", None, 4000, True),
        ("IN IP6 ::", "sendonly", 4000, True),
        ("IN IP4 192.0.2.1", "inactive", 4000, True),
        ("IN IP4 192.0.2.1", "recvonly", 4000, True),
        ("IN IP4 192.0.2.1", "sendrecv", 0, True),
        ("IN IP4 host.example.com", None, 4000, False),
    ],
)
def test_is_paused(connection: str, direction: str | None, port: int, paused: bool) -> None:
    media = MediaDescription(
        "audio",
        port,
        "RTP/AVP",
        ["0"],
        media_connection=Connection.parse(connection),
        attributes=[(direction, None)] if direction else [],
    )
    assert media.is_paused is paused


def test_media_without_session_has_no_inherited_values() -> None:
    media = MediaDescription("audio", 4000, "RTP/AVP", ["0"])
    assert media.connection is None
    assert media.direction == "sendrecv"
    assert "label=None" in repr(media)


def test_connection_for_address() -> None:
    assert str(Connection.for_address("2001:db8::1")) == "IN IP6 2001:db8::1"
    assert str(Connection.for_address("192.0.2.1")) == "IN IP4 192.0.2.1"
    assert Connection.parse("IN IP4 224.2.1.1/127/3").host == "224.2.1.1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "SDP body is empty"),
        ("\r\n\r\n", "SDP body is empty"),
        ("o=- 1 1 IN IP4 1.2.3.4\r\n", "SDP does not start with v="),
        ("v=1\r\no=- 1 1 IN IP4 1.2.3.4\r\n", "Unsupported SDP version '1'"),
        ("v=0\r\ns=-\r\n", "SDP has no o= line"),
        ("v=0\r\nhello\r\n", "Bad SDP line 2: 'hello'"),
        ("v=0\r\n==x\r\n", "Bad SDP line 2: '==x'"),
        ("v=0\r\no=- 1 1 IN IP4 a\r\no=- 1 1 IN IP4 a\r\n", "SDP has more than one o= line"),
        ("v=0\r\nv=0\r\n", "SDP has more than one v= line"),
        ("v=0\r\no=- 1 1 IN IP4 a\r\nc=IN IP4\r\n", "Bad c= line: 'IN IP4'"),
        (
            "v=0\r\no=- 1 1 IN IP4 a\r\nm=audio x RTP/AVP 0\r\n",
            "Bad m= line port: 'audio x RTP/AVP 0'",
        ),
        (
            "v=0\r\no=- 1 1 IN IP4 a\r\nm=audio 70000 RTP/AVP 0\r\n",
            "Bad m= line port: 'audio 70000 RTP/AVP 0'",
        ),
        (
            "v=0\r\no=- 1 1 IN IP4 a\r\nm=audio 1/x RTP/AVP 0\r\n",
            "Bad m= line port: 'audio 1/x RTP/AVP 0'",
        ),
        (
            "v=0\r\no=- 1 1 IN IP4 a\r\nm=audio 1 RTP/AVP 0\r\ns=-\r\n",
            "SDP s= line after an m= line",
        ),
        ("v=0\r\no=- 1 1 IN IP4 a\r\nm=audio 1 RTP/AVP 0\r\nc=IN\r\n", "Bad c= line: 'IN'"),
    ],
)
def test_invalid(text: str, message: str) -> None:
    with pytest.raises(SdpError) as info:
        SessionDescription.parse(text)
    assert str(info.value) == message
    assert info.value.status == 400


def test_too_many_media_lines() -> None:
    text = "v=0\r\no=- 1 1 IN IP4 a\r\n" + "m=audio 1 RTP/AVP 0\r\n" * 33
    with pytest.raises(SdpError, match=r"^SDP has more than 32 m= lines$"):
        SessionDescription.parse(text)


def test_long_lines_are_shortened_in_messages() -> None:
    with pytest.raises(SdpError) as info:
        SessionDescription.parse("v=0\r\n" + "x" * 100)
    assert str(info.value) == "Bad SDP line 2: '" + "x" * 60 + "...'"


def test_latin1_body_is_read() -> None:
    sdp = SessionDescription.parse(b"v=0\r\no=- 1 1 IN IP4 a\r\ns=Caf\xe9\r\n")
    assert sdp.session_name == "Café"


# -- properties ---------------------------------------------------------------------------
_TOKEN = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=":"),
    min_size=1,
    max_size=12,
)
_VALUE = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF, exclude_characters="\r\n"),
    max_size=30,
).map(str.strip)
_ATTRIBUTES = st.lists(st.tuples(_TOKEN, st.none() | _VALUE), max_size=5)
_CONNECTION = st.builds(
    Connection,
    st.just("IN"),
    st.sampled_from(["IP4", "IP6"]),
    st.sampled_from(["192.0.2.1", "0.0.0.0", "2001:db8::1", "::", "h.example"]),
)
_MEDIA = st.builds(
    MediaDescription,
    media=st.sampled_from(["audio", "video", "application"]),
    port=st.integers(0, 65535),
    proto=st.sampled_from(["RTP/AVP", "RTP/SAVP", "UDP/TLS/RTP/SAVPF"]),
    formats=st.lists(st.integers(0, 127).map(str), max_size=5),
    port_count=st.none() | st.integers(1, 9),
    media_connection=st.none() | _CONNECTION,
    attributes=_ATTRIBUTES,
    lines=st.lists(st.tuples(st.sampled_from(["i", "b", "k"]), _VALUE), max_size=2),
)
_SESSION = st.builds(
    SessionDescription,
    origin=st.builds(
        Origin,
        _TOKEN,
        st.integers(0, 2**63).map(str),
        st.integers(0, 2**63).map(str),
        st.just("IN"),
        st.just("IP4"),
        st.just("192.0.2.1"),
    ),
    session_name=_VALUE.filter(bool),
    connection=st.none() | _CONNECTION,
    attributes=_ATTRIBUTES,
    media=st.lists(_MEDIA, max_size=4),
    lines=st.lists(st.tuples(st.sampled_from(["i", "u", "t", "b", "z"]), _VALUE), max_size=3),
)


def _in_rfc_order(lines: list[tuple[str, str]], first: tuple[str, ...]) -> list[tuple[str, str]]:
    """Optional lines as str() writes them: those that precede c= first (RFC 8866 5)."""
    return [ln for ln in lines if ln[0] in first] + [ln for ln in lines if ln[0] not in first]


@given(_SESSION)
def test_round_trip_property(sdp: SessionDescription) -> None:
    parsed = SessionDescription.parse(str(sdp))
    assert str(parsed) == str(sdp)
    assert (parsed.origin, parsed.session_name, parsed.connection, parsed.attributes) == (
        sdp.origin,
        sdp.session_name,
        sdp.connection,
        sdp.attributes,
    )
    assert parsed.lines == _in_rfc_order(sdp.lines, ("i", "u", "e", "p"))
    assert len(parsed.media) == len(sdp.media)
    for media, original in zip(parsed.media, sdp.media, strict=True):
        assert (media.media, media.port, media.port_count, media.proto, media.formats) == (
            original.media,
            original.port,
            original.port_count,
            original.proto,
            original.formats,
        )
        assert media.attributes == original.attributes
        assert media.media_connection == original.media_connection
        assert media.lines == _in_rfc_order(original.lines, ("i",))
        assert media.connection == (original.media_connection or sdp.connection)


@given(st.text(max_size=400))
def test_never_crashes_on_text(text: str) -> None:
    try:
        sdp = SessionDescription.parse(text)
    except SdpError:
        return
    for media in sdp.media:
        assert media.direction in ("sendrecv", "sendonly", "recvonly", "inactive")
        _ = (media.codecs, media.crypto, media.is_paused, media.ptime, media.fmtp)


@given(st.binary(max_size=400))
def test_never_crashes_on_bytes(data: bytes) -> None:
    with contextlib.suppress(SdpError):
        SessionDescription.parse(b"v=0\r\no=- 1 1 IN IP4 a\r\n" + data)
