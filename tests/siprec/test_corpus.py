"""Every fact the corpus sidecars list, checked against what callvault extracts.

Each ``shared/corpus/siprec/NAME.sip`` is parsed with the SIP parser, its body read with
``read_offer``, and every entry of ``NAME.json``'s ``expected`` is asserted. The partial
metadata updates (``rfc7865_*_partial``) are merged with the complete snapshot of their
dialog first, as their sidecars say. Then an SDP answer is built for every offer and
checked: m-line order and labels kept, recvonly (or inactive), the expected codec,
refused m-lines with port 0.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from callvault.sdp import SessionDescription, build_answer, choose_streams
from callvault.sip.message import Request, parse_message
from callvault.sip.multipart import media_type
from callvault.siprec import RecordingMetadata, SiprecOffer, merge, read_offer
from tests.corpus import SIPREC_CORPUS

CASES = sorted(SIPREC_CORPUS.glob("*.sip"))
NO_DIRECTION = "(none: defaults to sendrecv)"
# Partial updates and the complete snapshot of the same dialog they apply to.
SNAPSHOT_FOR = {
    "rfc7865_hold_reinvite_partial.sip": "rfc7865_alice_bob_4streams_invite.sip",
    "rfc7865_resume_reinvite_partial.sip": "rfc7865_alice_bob_4streams_invite.sip",
}


def test_corpus_is_complete() -> None:
    index = json.loads((SIPREC_CORPUS / "index.json").read_text())
    assert sorted(entry["file"] for entry in index["files"]) == [p.name for p in CASES]
    assert len(CASES) == 25


def load(path: Path) -> tuple[Request, SiprecOffer, dict[str, Any]]:
    message = parse_message(path.read_bytes())
    assert isinstance(message, Request)
    offer = read_offer(
        message.headers.get("Content-Type") or "",
        message.body,
        disposition=message.headers.get("Content-Disposition"),
    )
    expected = json.loads(path.with_suffix(".json").read_text())["expected"]
    return message, offer, expected


def effective_metadata(path: Path, offer: SiprecOffer) -> RecordingMetadata | None:
    """The metadata picture after this message (partial updates merged)."""
    if offer.metadata is None or path.name not in SNAPSHOT_FOR:
        return offer.metadata
    _, snapshot, _ = load(SIPREC_CORPUS / SNAPSHOT_FOR[path.name])
    assert snapshot.metadata is not None
    return merge(snapshot.metadata, offer.metadata)


def label_or_marker(metadata: RecordingMetadata, stream_id: str) -> str:
    label = metadata.label_of(stream_id)
    return label if label is not None else f"(undeclared stream {stream_id})"


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_sip_headers(path: Path) -> None:
    message, _, expected = load(path)
    number, method = message.cseq
    assert message.method == expected["method"]
    assert message.uri == expected["request_uri"]
    assert message.call_id == expected["call_id"]
    assert f"{number} {method}" == expected["cseq"]
    assert message.headers.get("Require") == expected["require"]
    assert message.headers.get("Contact") == expected["contact"]
    assert message.headers.get("Session-ID") == expected["session_id_header"]
    assert message.headers.get("User-Agent") == expected["user_agent"]
    assert message.headers.get("Content-Type") == expected["content_type"]
    # The parser frames the body by Content-Length and drops the header (it is
    # recomputed on serialisation), so check the declared value in the raw bytes.
    head = path.read_bytes().split(b"\r\n\r\n", 1)[0].decode()
    declared = [
        line.split(":", 1)[1] for line in head.split("\r\n") if line.startswith("Content-Length:")
    ]
    assert [int(value) for value in declared] == [expected["content_length"]]
    assert len(message.body) == expected["content_length"]


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_body_parts(path: Path) -> None:
    _message, offer, expected = load(path)
    if expected["body_parts"] is None:
        assert not media_type(expected["content_type"]).startswith("multipart/")
        assert len(offer.parts) == 1
        assert offer.parts[0].content_type == expected["content_type"]
        return
    assert [(p.content_type, p.content_disposition) for p in offer.parts] == [
        (part["content_type"], part["content_disposition"]) for part in expected["body_parts"]
    ]
    used = {id(p) for p in offer.parts} - {id(p) for p in offer.ignored_parts}
    assert len(used) == (offer.sdp is not None) + (offer.metadata is not None)
    assert [p.mime_type for p in offer.ignored_parts] == [
        part["content_type"]
        for part in expected["body_parts"]
        if part["content_type"] not in ("application/sdp",)
        and not part["content_type"].startswith("application/rs-metadata")
    ]


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_media_streams(path: Path) -> None:
    _, offer, expected = load(path)
    sdp = offer.sdp
    if expected["media_stream_count"] == 0:
        assert sdp is None
        return
    assert sdp is not None
    assert len(sdp.media) == expected["media_stream_count"]
    assert sdp.labels == expected["labels"]
    metadata = effective_metadata(path, offer)
    for media, fact in zip(sdp.media, expected["streams"], strict=True):
        assert media.label == fact["label"]
        assert media.media == fact["media"]
        assert media.port == fact["port"]
        assert media.proto == fact["proto"]
        if fact["direction"] == NO_DIRECTION:
            assert media.explicit_direction is None
            assert media.direction == "sendrecv"
        else:
            assert media.explicit_direction == fact["direction"]
            assert media.direction == fact["direction"]
        connection = media.connection
        assert (str(connection) if connection is not None else None) == fact["connection"]
        assert [
            {
                "pt": codec.payload_type,
                "encoding": f"{codec.encoding}/{codec.clock_rate}"
                + (f"/{codec.channels}" if codec.channels != 1 else ""),
                "declared_by": "rtpmap" if codec.declared else "static payload type (RFC 3551)",
            }
            for codec in media.codecs
        ] == fact["codecs"]
        assert media.attribute("ptime") == fact["ptime"]
        assert media.ptime == (int(fact["ptime"]) if fact["ptime"] is not None else None)
        assert len(media.attribute_values("crypto")) == fact["crypto_lines"]
        assert len(media.crypto) == fact["crypto_lines"]
        if "metadata_stream_id" not in fact:
            assert metadata is None
            continue
        assert metadata is not None
        stream = metadata.stream_for_label(fact["label"])
        assert stream is not None
        assert stream.stream_id == fact["metadata_stream_id"]
        label = fact["label"]
        assert [p.participant_id for p in metadata.participants_sending(label)] == fact["sent_by"]
        assert [p.participant_id for p in metadata.participants_receiving(label)] == fact[
            "received_by"
        ]


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_metadata(path: Path) -> None:
    _, offer, expected = load(path)
    fact = expected["metadata"]
    if fact is None:
        assert offer.metadata is None
        return
    parsed = offer.metadata
    assert parsed is not None
    assert parsed.well_formed is fact["xml_well_formed"]
    assert bool(parsed.warnings) is not fact["xml_well_formed"]
    assert parsed.root_element == fact["root_element"]
    assert parsed.namespace == fact["namespace"]
    assert parsed.datamode == fact["datamode"]
    # These two describe the body itself, also for partial updates.
    assert parsed.recording_session_id == fact["recording_session_id"]
    assert [(s.stream_id, s.label) for s in parsed.streams] == [
        (s["stream_id"], s["label"]) for s in fact["declared_streams"]
    ]
    metadata = effective_metadata(path, offer)
    assert metadata is not None
    assert [
        {
            "participant_id": p.participant_id,
            "aor": p.aor,
            "name": p.name,
            "sends_labels": [label_or_marker(metadata, s) for s in p.sends],
            "receives_labels": [label_or_marker(metadata, s) for s in p.receives],
        }
        for p in metadata.participants
    ] == fact["participants"]


def test_unescaped_ampersand_is_repaired_with_a_warning() -> None:
    _, offer, _ = load(SIPREC_CORPUS / "cisco_cube_unescaped_ampersand_xml.sip")
    assert offer.metadata is not None
    assert offer.metadata.warnings == (
        "rs-metadata repaired: escaped 1 unescaped '&' "
        "(was: not well-formed (invalid token): line 20, column 47)",
    )
    assert offer.metadata.participants[1].name == "DENVER CITY&CNT"


def test_undeclared_stream_is_not_given_a_label() -> None:
    _, offer, _ = load(SIPREC_CORPUS / "broadworks_mixed_mono_initial_invite.sip")
    metadata = offer.metadata
    assert metadata is not None
    far_end = metadata.participants[1]
    assert far_end.sends == ("urn:uuid:9b6ad4c2-9901-4387-8659-a366bfb7dc19",)
    assert metadata.labels_sent_by(far_end) == ()
    assert metadata.labels_sent_by(metadata.participants[0].participant_id) == ("1",)


# -- answers ------------------------------------------------------------------------------
# The codec the SRS picks per m-line (None: refused), offerer's order among recordable.
EXPECTED_CODECS: dict[str, list[str | None]] = {
    "audiocodes_avaya_ucid_legacy_metadata": ["PCMA", "PCMA"],
    "audiocodes_mediant_2streams": ["PCMU", "PCMU"],
    "audiocodes_srtp_crypto_constructed": ["PCMU", "PCMU"],
    "avaya_sbce_2streams": ["PCMA", "PCMA"],
    "avaya_sbce_mono_initial_invite": ["PCMU"],
    "broadworks_mixed_mono_initial_invite": ["PCMA"],
    "broadworks_pause_reinvite_c0": ["PCMA"],
    "broadworks_resume_reinvite": ["PCMA"],
    "cisco_cube_2streams_gtd": ["PCMU", "PCMU"],
    "cisco_cube_inactive_initial_invite": ["PCMU", "PCMU"],
    "cisco_cube_unescaped_ampersand_xml": ["PCMU", "PCMU"],
    "intrado_viper_asterisk_mono": ["PCMU"],
    "metaswitch_hold_reinvite_c0": ["PCMU"],
    "metaswitch_mixed_mono_initial_invite": ["G729"],
    "opensips_siprec_2streams_no_connection_line": ["PCMU", "PCMA"],
    "oracle_acme_sbc_2streams": ["PCMU", "PCMU"],
    "oracle_acme_sbc_avaya_ucid": ["PCMA", "PCMA"],
    "rfc7865_alice_bob_4streams_invite": ["PCMU", None, "PCMU", None],
    "rfc7865_hold_reinvite_partial": ["PCMU", None, "PCMU", None],
    "rfc7865_resume_reinvite_partial": ["PCMU", None, "PCMU", None],
    "sems_sbc_labels_a_leg_b_leg": ["PCMA", "PCMA"],
    "sonus_ribbon_sbc_2streams": ["PCMU", "PCMU"],
    "webex_calling_2streams_metadata_first": ["PCMA", "PCMA"],
    "webex_calling_transfer_reinvite_new_metadata": ["opus"],
}
SDP_CASES = [p for p in CASES if p.stem in EXPECTED_CODECS]


def test_every_offer_has_an_expected_codec() -> None:
    with_sdp = [p.stem for p in CASES if load(p)[1].sdp is not None]
    assert with_sdp == sorted(EXPECTED_CODECS)


@pytest.mark.parametrize("path", SDP_CASES, ids=[p.stem for p in SDP_CASES])
def test_answer(path: Path) -> None:
    _, offer, _ = load(path)
    assert offer.sdp is not None
    choices = choose_streams(offer.sdp)
    assert [c.codec if c else None for c in choices] == EXPECTED_CODECS[path.stem]
    ports = [30000 + 2 * i for i in range(len(choices))]
    answer = build_answer(
        offer.sdp, choices, address="192.0.2.10", ports=ports, session_id=7, session_version=1
    )
    parsed = SessionDescription.parse(bytes(answer))
    assert parsed == answer
    assert str(parsed.connection) == "IN IP4 192.0.2.10"
    assert len(parsed.media) == len(offer.sdp.media)
    assert parsed.labels == offer.sdp.labels
    for offered, answered, choice, port in zip(
        offer.sdp.media, parsed.media, choices, ports, strict=True
    ):
        assert answered.media == offered.media
        assert answered.proto == offered.proto
        if choice is None:
            assert answered.port == 0
            assert answered.formats == offered.formats
            continue
        assert answered.port == port
        assert answered.codecs[0].name == choice.codec
        assert answered.codecs[0].payload_type == choice.payload_type
        expected_direction = "inactive" if offered.is_paused else "recvonly"
        assert answered.direction == expected_direction
        offered_events = [
            c.payload_type
            for c in offered.codecs
            if c.encoding == "telephone-event" and c.clock_rate == choice.clock_rate
        ]
        assert choice.telephone_event_pt == (offered_events[0] if offered_events else None)
        assert answered.ptime == offered.ptime
        assert len(answered.crypto) == len(offered.crypto)
        for ours in answered.crypto:
            assert choice.srtp is not None
            assert (ours.tag, ours.suite) == (choice.srtp.tag, choice.srtp.suite)
            assert ours.key_salt != choice.srtp.key_salt


def test_answer_to_held_and_inactive_streams_is_inactive() -> None:
    for name in ("broadworks_pause_reinvite_c0", "cisco_cube_inactive_initial_invite"):
        _, offer, _ = load(SIPREC_CORPUS / f"{name}.sip")
        assert offer.sdp is not None
        choices = choose_streams(offer.sdp)
        assert all(c is not None and c.paused for c in choices)
        answer = build_answer(
            offer.sdp,
            choices,
            address="192.0.2.10",
            ports=[40000] * len(choices),
            session_id=1,
            session_version=2,
        )
        assert {m.direction for m in answer.media} == {"inactive"}


def test_no_connection_line_leaves_the_remote_address_to_the_caller() -> None:
    _, offer, _ = load(SIPREC_CORPUS / "opensips_siprec_2streams_no_connection_line.sip")
    assert offer.sdp is not None
    assert offer.sdp.connection is None
    choices = choose_streams(offer.sdp)
    assert [(c.remote_address, c.remote_port) for c in choices if c] == [
        (None, 35011),
        (None, 35012),
    ]
