"""Tests for callvault.sdp.codecs: the static table and the recorder's codec choice."""

from __future__ import annotations

from callvault.sdp.codecs import STATIC_PAYLOAD_TYPES, Codec, canonical_codec_name, choose_codec


def test_rfc3551_audio_table() -> None:
    assert {pt: STATIC_PAYLOAD_TYPES[pt][0] for pt in (0, 3, 4, 8, 9, 13, 15, 18)} == {
        0: "PCMU",
        3: "GSM",
        4: "G723",
        8: "PCMA",
        9: "G722",
        13: "CN",
        15: "G728",
        18: "G729",
    }
    # G722 samples at 16 kHz but its RTP clock is 8000 (RFC 3551 4.5.2).
    assert STATIC_PAYLOAD_TYPES[9] == ("G722", 8000, 1)
    assert STATIC_PAYLOAD_TYPES[10] == ("L16", 44100, 2)
    assert 19 not in STATIC_PAYLOAD_TYPES  # reserved: Cisco maps CN to 19 by rtpmap


def test_offerer_order_wins_among_recordable_codecs() -> None:
    codecs = [
        Codec(96, "H264", 90000),
        Codec(97, "iLBC", 8000),
        Codec(8, "PCMA", 8000),
        Codec(0, "PCMU", 8000),
        Codec(101, "telephone-event", 8000, fmtp="0-15"),
        Codec(13, "CN", 8000),
    ]
    choice = choose_codec(codecs)
    assert choice is not None
    assert choice.codec.payload_type == 8
    assert choice.telephone_event == codecs[4]
    assert choice.comfort_noise == codecs[5]


def test_companions_must_share_the_clock_rate() -> None:
    codecs = [
        Codec(111, "opus", 48000, 2),
        Codec(101, "telephone-event", 8000),
        Codec(107, "telephone-event", 48000),
        Codec(13, "CN", 8000),
    ]
    choice = choose_codec(codecs)
    assert choice is not None
    assert (choice.codec.name, choice.telephone_event, choice.comfort_noise) == (
        "opus",
        codecs[2],
        None,
    )


def test_no_recordable_codec() -> None:
    assert choose_codec([Codec(96, "H264", 90000), Codec(101, "telephone-event", 8000)]) is None
    assert choose_codec([]) is None


def test_names_are_case_insensitive() -> None:
    assert canonical_codec_name("pcmu") == "PCMU"
    assert canonical_codec_name("OPUS") == "opus"
    assert canonical_codec_name("amr-wb") == "AMR-WB"
    assert canonical_codec_name("Telephone-Event") == "telephone-event"
    assert canonical_codec_name("cn") == "CN"
    assert canonical_codec_name("H264") == "H264"
    assert Codec(111, "opus", 48000, 2).rtpmap_value() == "111 opus/48000/2"
    assert Codec(0, "PCMU", 8000).rtpmap_value() == "0 PCMU/8000"
