"""Tests for callvault.sdp.answer: stream choice, the SRS's answer and its own offer."""

from __future__ import annotations

import pytest

from callvault.sdp import (
    CryptoAttribute,
    SdpError,
    SessionDescription,
    StreamChoice,
    build_answer,
    build_offer,
    choose_streams,
    require_usable,
)

HEAD = "v=0\r\no=SRC 1 1 IN IP4 198.51.100.1\r\ns=-\r\nc=IN IP4 198.51.100.1\r\nt=0 0\r\n"
KEY_A = "d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj"


def offer(*media: str) -> SessionDescription:
    return SessionDescription.parse(HEAD + "".join(media))


def audio(
    port: int = 4000,
    proto: str = "RTP/AVP",
    formats: str = "0 101",
    extra: str = "a=rtpmap:101 telephone-event/8000\r\na=sendonly\r\n",
    label: str = "1",
) -> str:
    return f"m=audio {port} {proto} {formats}\r\n{extra}a=label:{label}\r\n"


def test_choice_for_a_plain_stream() -> None:
    (choice,) = choose_streams(
        offer(audio(extra="a=ptime:20\r\na=rtpmap:101 telephone-event/8000\r\n"))
    )
    assert choice == StreamChoice(
        index=0,
        label="1",
        codec="PCMU",
        payload_type=0,
        clock_rate=8000,
        channels=1,
        fmtp=None,
        telephone_event_pt=101,
        cn_pt=None,
        srtp=None,
        paused=False,
        remote_address="198.51.100.1",
        remote_port=4000,
        ptime=20,
    )


@pytest.mark.parametrize(
    "media",
    [
        "m=video 4000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n",  # not audio
        audio(port=0),  # refused by the offerer already
        audio(formats="96", extra="a=rtpmap:96 iLBC/8000\r\n"),  # nothing recordable
        audio(formats="101"),  # events alone
        audio(proto="UDP/TLS/RTP/SAVPF"),  # DTLS-SRTP: no SDES key
        audio(proto="RTP/SAVP"),  # SRTP without a=crypto
        audio(proto="RTP/SAVP", extra=f"a=crypto:1 F8_128_HMAC_SHA1_80 inline:{KEY_A}\r\n"),
        audio(proto="udp"),
    ],
)
def test_refused_streams(media: str) -> None:
    assert choose_streams(offer(media)) == [None]
    with pytest.raises(SdpError) as info:
        require_usable(choose_streams(offer(media)))
    assert (str(info.value), info.value.status) == (
        "No recordable audio stream in the SDP offer",
        488,
    )


def test_srtp_takes_the_first_supported_suite() -> None:
    extra = (
        f"a=crypto:1 F8_128_HMAC_SHA1_80 inline:{KEY_A}\r\n"
        f"a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:{KEY_A}|2^31\r\n"
        f"a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A}\r\n"
    )
    (choice,) = choose_streams(offer(audio(proto="RTP/SAVP", extra=extra)))
    assert choice is not None and choice.srtp is not None
    assert (choice.srtp.tag, choice.srtp.suite, choice.srtp.lifetime) == (
        2,
        "AES_CM_128_HMAC_SHA1_32",
        2**31,
    )


def test_golden_answer() -> None:
    sdp = offer(
        audio(
            formats="18 8 101 13",
            extra=(
                "a=fmtp:18 annexb=no\r\na=rtpmap:101 telephone-event/8000\r\n"
                "a=fmtp:101 0-15\r\na=ptime:30\r\na=sendonly\r\n"
            ),
            label="10",
        ),
        "m=video 4002 RTP/AVPF 96\r\na=rtpmap:96 H264/90000\r\na=label:11\r\n",
        audio(
            port=4004,
            proto="RTP/SAVP",
            extra=f"a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A}|2^20|1:4\r\na=inactive\r\n",
            label="12",
        ),
    )
    choices = choose_streams(sdp)
    assert [c.codec if c else None for c in choices] == ["G729", None, "PCMU"]

    def local_crypto(theirs: CryptoAttribute) -> CryptoAttribute:
        return CryptoAttribute.generate(theirs.tag, theirs.suite, lambda n: b"\x01" * n)

    answer = build_answer(
        sdp,
        choices,
        address="192.0.2.5",
        ports=[20000, 0, 20002],
        session_id=42,
        session_version=3,
        local_crypto=local_crypto,
    )
    assert str(answer) == (
        "v=0\r\n"
        "o=callvault 42 3 IN IP4 192.0.2.5\r\n"
        "s=-\r\n"
        "c=IN IP4 192.0.2.5\r\n"
        "t=0 0\r\n"
        "m=audio 20000 RTP/AVP 18 101 13\r\n"
        "a=rtpmap:18 G729/8000\r\n"
        "a=fmtp:18 annexb=no\r\n"
        "a=rtpmap:101 telephone-event/8000\r\n"
        "a=fmtp:101 0-15\r\n"
        "a=rtpmap:13 CN/8000\r\n"
        "a=ptime:30\r\n"
        "a=recvonly\r\n"
        "a=label:10\r\n"
        "m=video 0 RTP/AVPF 96\r\n"
        "a=label:11\r\n"
        # PT 101 has no a=rtpmap in that m-line: an unknown dynamic type is not taken.
        "m=audio 20002 RTP/SAVP 0\r\n"
        "a=rtpmap:0 PCMU/8000\r\n"
        "a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB\r\n"
        "a=inactive\r\n"
        "a=label:12\r\n"
    )
    # One port per accepted stream gives the same answer.
    again = build_answer(
        sdp,
        choices,
        address="192.0.2.5",
        ports=[20000, 20002],
        session_id=42,
        session_version=3,
        local_crypto=local_crypto,
    )
    assert str(again) == str(answer)


@pytest.mark.parametrize(
    ("direction", "answered"),
    [
        ("sendonly", "recvonly"),
        ("sendrecv", "recvonly"),
        ("recvonly", "inactive"),
        ("inactive", "inactive"),
    ],
)
def test_answer_direction(direction: str, answered: str) -> None:
    sdp = offer(audio(extra=f"a={direction}\r\n"))
    answer = build_answer(
        sdp, choose_streams(sdp), address="192.0.2.5", ports=[1], session_id=1, session_version=1
    )
    assert answer.media[0].direction == answered


def test_hold_address_is_answered_inactive() -> None:
    sdp = SessionDescription.parse(
        HEAD.replace("c=IN IP4 198.51.100.1", "c=IN IP4 0.0.0.0") + audio(extra="")
    )
    choices = choose_streams(sdp)
    assert choices[0] is not None and choices[0].paused
    answer = build_answer(
        sdp, choices, address="192.0.2.5", ports=[1], session_id=1, session_version=1
    )
    assert answer.media[0].direction == "inactive"


def test_default_local_key_is_fresh_and_matches_the_offer() -> None:
    sdp = offer(
        audio(proto="RTP/SAVP", extra=f"a=crypto:4 AES_CM_128_HMAC_SHA1_32 inline:{KEY_A}\r\n")
    )
    choices = choose_streams(sdp)
    answer = build_answer(
        sdp, choices, address="2001:db8::5", ports=[1], session_id=1, session_version=1
    )
    (ours,) = answer.media[0].crypto
    (choice,) = choices
    assert choice is not None and choice.srtp is not None
    assert (ours.tag, ours.suite, len(ours.key_salt)) == (4, "AES_CM_128_HMAC_SHA1_32", 30)
    assert ours.key_salt != choice.srtp.key_salt
    assert str(answer.connection) == "IN IP6 2001:db8::5"
    assert str(answer.origin) == "callvault 1 1 IN IP6 2001:db8::5"


def test_answer_argument_errors() -> None:
    sdp = offer(
        audio(proto="RTP/SAVP", extra=f"a=crypto:4 AES_CM_128_HMAC_SHA1_32 inline:{KEY_A}\r\n"),
        audio(port=5000),
    )
    choices = choose_streams(sdp)
    with pytest.raises(ValueError, match=r"^3 ports for 2 m-lines \(2 accepted\)$"):
        build_answer(sdp, choices, address="a", ports=[1, 2, 3], session_id=1, session_version=1)
    with pytest.raises(ValueError, match=r"^1 choices for 2 m-lines$"):
        build_answer(sdp, choices[:1], address="a", ports=[1], session_id=1, session_version=1)
    with pytest.raises(ValueError, match=r"^local_crypto must keep the offered tag and suite$"):
        build_answer(
            sdp,
            choices,
            address="a",
            ports=[1, 2],
            session_id=1,
            session_version=1,
            local_crypto=lambda theirs: CryptoAttribute.generate(9, theirs.suite),
        )


def test_build_offer() -> None:
    sdp = build_offer(
        ["1", "2"], address="192.0.2.5", ports=[30000, 30002], session_id=9, session_version=1
    )
    assert str(sdp) == (
        "v=0\r\no=callvault 9 1 IN IP4 192.0.2.5\r\ns=-\r\nc=IN IP4 192.0.2.5\r\nt=0 0\r\n"
        + "".join(
            f"m=audio {port} RTP/AVP 0 8 9 111 101\r\n"
            "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:9 G722/8000\r\n"
            "a=rtpmap:111 opus/48000/2\r\na=rtpmap:101 telephone-event/8000\r\n"
            f"a=fmtp:101 0-16\r\na=recvonly\r\na=label:{label}\r\n"
            for label, port in (("1", 30000), ("2", 30002))
        )
    )
    assert SessionDescription.parse(str(sdp)) == sdp
    with pytest.raises(ValueError, match=r"^1 ports for 2 labels$"):
        build_offer(["1", "2"], address="a", ports=[1], session_id=1, session_version=1)
