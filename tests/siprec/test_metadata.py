"""Tests for callvault.siprec.metadata and reader: the model, vendor shapes and merge."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from callvault.sip.message import Request, parse_message
from callvault.siprec import (
    NS_LEGACY,
    NS_RFC7865,
    BroadWorksInfo,
    ExtensionData,
    MetadataError,
    MetadataParticipant,
    MetadataStream,
    RecordingMetadata,
    merge,
    parse_metadata,
    read_offer,
)
from tests.corpus import SIPREC_CORPUS

FIXTURES = Path(__file__).parent / "fixtures"
GOLDEN = sorted(p for p in FIXTURES.glob("*.xml") if not p.stem.endswith("_invalid"))
INVALID = {
    "rfc7865_complete_invalid.xml": "rs-metadata rejected: DTD/entity declarations are forbidden",
    "legacy_siprec_invalid.xml": (
        "rs-metadata rejected: not well-formed XML (unclosed token: line 15, column 2)"
    ),
}


def corpus_metadata(name: str) -> tuple[RecordingMetadata, bytes]:
    message = parse_message((SIPREC_CORPUS / name).read_bytes())
    assert isinstance(message, Request)
    offer = read_offer(message.headers.get("Content-Type") or "", message.body)
    assert offer.metadata is not None and offer.metadata_raw is not None
    return offer.metadata, offer.metadata_raw


def test_every_golden_fixture_has_an_invalid_twin() -> None:
    assert sorted(INVALID) == sorted(f"{p.stem}_invalid.xml" for p in GOLDEN)


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_twin(name: str) -> None:
    with pytest.raises(MetadataError) as info:
        parse_metadata((FIXTURES / name).read_bytes())
    assert (info.value.reason, info.value.status) == (INVALID[name], 400)


def test_rfc7865_complete() -> None:
    metadata = parse_metadata((FIXTURES / "rfc7865_complete.xml").read_bytes())
    assert (metadata.namespace, metadata.root_element, metadata.datamode) == (
        NS_RFC7865,
        "recording",
        "complete",
    )
    assert (metadata.recording_session_id, metadata.group_id, metadata.session_ids) == (
        "S1",
        "G1",
        ("S1",),
    )
    assert metadata.sip_session_ids == (
        "ab30317f1a784dc48ff824d0d3715d86;remote=47755a9de7794ba387653f2099600ef2",
    )
    assert (metadata.start_time, metadata.stop_time) == (
        "2024-01-02T03:04:05Z",
        "2024-01-02T03:10:00Z",
    )
    assert metadata.streams == (
        MetadataStream("ST1", "1", "S1"),
        MetadataStream("ST2", "2", "S1"),
    )
    alice, bob = metadata.participants
    assert alice == MetadataParticipant(
        "P1",
        "sip:alice@example.com",
        "Alice & Co",
        ("ST1",),
        ("ST2",),
        "2024-01-02T03:04:05Z",
        None,
        True,
    )
    assert (bob.name, bob.disassociate_time) == (None, "2024-01-02T03:09:00Z")
    assert metadata.correlation_ids == (("genesys_uuid", "00a1b2c3-genesys"),)
    assert metadata.extensions == (
        ExtensionData(
            "S1",
            '<ac:GenesysUUID xmlns:ac="http://AudioCodes">00a1b2c3-genesys</ac:GenesysUUID>',
            "session",
        ),
    )
    assert metadata.well_formed and metadata.warnings == ()
    # Model helpers.
    assert metadata.labels_sent_by(alice) == ("1",)
    assert metadata.labels_received_by("P1") == ("2",)
    assert metadata.labels_sent_by("nobody") == ()
    assert metadata.participants_sending("2") == (bob,)
    assert metadata.participants_receiving("2") == (alice,)
    assert metadata.stream_for_label("3") is None
    assert metadata.label_of("ST2") == "2"
    assert metadata.avaya_ucid is None
    assert repr(metadata) == "<RecordingMetadata complete session='S1' streams=2 participants=2>"


def test_legacy_siprec_shape() -> None:
    metadata = parse_metadata((FIXTURES / "legacy_siprec.xml").read_bytes())
    assert (metadata.namespace, metadata.root_element, metadata.recording_id) == (
        NS_LEGACY,
        "recording_metadata",
        "urn:uuid:R1",
    )
    assert metadata.recording_session_id == "urn:uuid:S1"
    assert metadata.group_id == "urn:uuid:G1"
    assert [(s.stream_id, s.label, s.mode) for s in metadata.streams] == [
        ("urn:uuid:ST1", "1", "separate"),
        ("urn:uuid:ST2", "2", "separate"),
    ]
    first, second = metadata.participants
    assert (first.aor, first.sends, first.receives) == (
        "sip:1001@example.com",
        ("urn:uuid:ST1",),
        ("urn:uuid:ST2",),
    )
    assert (second.aor, second.sends, second.receives) == (
        "sip:+15550100@example.com;user=phone",
        ("urn:uuid:ST2",),
        (),
    )
    assert metadata.broadworks == BroadWorksInfo(
        service_provider_id="SP1",
        group_id="GRP1",
        user_id="1001@example.com",
        ext_tracking_id="1234-tracking",
        call_id="callhalf-1:0",
        call_type="origCall",
        calling_party_number="sip:1001@example.com",
        called_party_number="sip:+15550100@example.com",
    )
    (extension,) = metadata.extensions
    assert (extension.parent, extension.parent_kind) == ("urn:uuid:S1", "session")
    assert extension.raw_xml.startswith('<extensiondata id="urn:uuid:E1" parent="urn:uuid:S1">')
    assert extension.raw_xml.endswith("</extensiondata>")


# -- BroadWorks / Webex ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "webex_calling_2streams_metadata_first.sip",
            BroadWorksInfo(
                service_provider_id="WBVDW867961",
                group_id="WBVDW867961L33739",
                user_id="kculs9klre@44936045.int10.bcld.webex.com",
                ext_tracking_id="45a32b36-2a6a-4ec1-9cf3-47824099fcd4",
                call_id="callhalf-36451339:0",
                call_type="termCall",
                calling_party_number="sip:7711@10.155.7.148;user=phone",
                called_party_number="sip:+12105550192@10.155.7.148",
            ),
        ),
        (
            "webex_calling_transfer_reinvite_new_metadata.sip",
            BroadWorksInfo(
                service_provider_id="WBVDW867961",
                group_id="WBVDW867961L33739",
                user_id="yztpfzzvkq@44936045.int10.bcld.webex.com",
                ext_tracking_id="7df53883-390e-482f-85d8-3af32358744a",
                call_id="callhalf-33564731:0",
                call_type="origCall",
                calling_party_number="sip:+12105550145@10.155.7.148",
                called_party_number="sip:7733@10.155.7.148;user=phone",
            ),
        ),
        (
            "broadworks_mixed_mono_initial_invite.sip",
            BroadWorksInfo(
                service_provider_id="434279",
                group_id="434279-1",
                user_id="8635550125@broadcore.com",
                ext_tracking_id="tracking-id-BW174823961260618-1533493893@10.10.20.5",
                call_id="callhalf-BW174823961260618-1533493893@10.10.20.5:0",
                call_type="termCall",
                calling_party_number="sip:+19015550100@broadcore.com;user=phone",
                called_party_number="sip:+18635550125@broadcore.com",
            ),
        ),
    ],
)
def test_broadworks_extraction(name: str, expected: BroadWorksInfo) -> None:
    metadata, raw = corpus_metadata(name)
    assert metadata.broadworks == expected
    assert metadata.correlation("broadworks_ext_tracking_id") == expected.ext_tracking_id
    assert metadata.correlation("broadworks_call_id") == expected.call_id
    (extension,) = metadata.extensions
    assert extension.parent == metadata.recording_session_id
    assert extension.parent_kind == "session"
    assert extension.raw_xml.encode() in raw


def test_user_of_the_recorded_party_is_a_participant() -> None:
    metadata, _ = corpus_metadata("webex_calling_2streams_metadata_first.sip")
    assert metadata.broadworks is not None and metadata.broadworks.user_id is not None
    recorded = [p for p in metadata.participants if metadata.broadworks.user_id in (p.aor or "")]
    assert [p.participant_id for p in recorded] == ["urn:uuid:53876310-87f4-4b34-bc74-399cc79c10b7"]


# -- vendor correlation ids and verbatim extensions ---------------------------------------
@pytest.mark.parametrize(
    ("name", "correlation_ids"),
    [
        (
            "audiocodes_avaya_ucid_legacy_metadata.sip",
            (("avaya_ucid", "YMMYTHBSHLHTEKNKJU4OIGEYBREHSHH3BJS3"),),
        ),
        (
            "oracle_acme_sbc_avaya_ucid.sip",
            (
                ("avaya_ucid", "00FA081003B9CF5E7DF7E5"),
                ("sip_call_id", "134485702_44821128@10.10.128.62"),
            ),
        ),
        (
            "sonus_ribbon_sbc_2streams.sip",
            (
                ("sip_call_id", "0a5a5f62-a606-1235-d6a2-5254003a4988"),
                ("sonus_gcid", "241467418"),
            ),
        ),
        ("metaswitch_mixed_mono_initial_invite.sip", ()),
    ],
)
def test_correlation_ids(name: str, correlation_ids: tuple[tuple[str, str], ...]) -> None:
    metadata, raw = corpus_metadata(name)
    assert metadata.correlation_ids == correlation_ids
    assert metadata.extensions
    for extension in metadata.extensions:
        assert extension.raw_xml.encode() in raw


def test_avaya_ucid_property() -> None:
    metadata, _ = corpus_metadata("oracle_acme_sbc_avaya_ucid.sip")
    assert metadata.avaya_ucid == "00FA081003B9CF5E7DF7E5"
    assert [(e.parent_kind, e.parent) for e in metadata.extensions] == [
        ("session", "0rBXFi0CTBB0j8HyGBBrlg=="),
        ("participant", "ARlTfnirTkxisET9jl8njg=="),
        ("participant", "L1OKBsjoTO11Pn5uow6ptQ=="),
    ]


def test_rfc7865_example_extensions() -> None:
    metadata, _ = corpus_metadata("rfc7865_alice_bob_4streams_invite.sip")
    assert [(e.parent_kind, e.raw_xml.split(">", 1)[0]) for e in metadata.extensions] == [
        ("group", "<call-center xmlns='urn:ietf:params:xml:ns:callcenter'"),
        ("group", "<mydata xmlns='http://example.com/my'"),
        ("session", "<mydata xmlns='http://example.com/my'"),
        ("participant", "<mydata xmlns='http://example.com/my'"),
        ("participant", "<mydata xmlns='http://example.com/my'"),
    ]


def test_unknown_namespace_and_datamode_are_warnings() -> None:
    metadata = parse_metadata(
        b"<recording xmlns='urn:example:other'><datamode>sometimes</datamode>"
        b"<participant participant_id='p'/><stream/><participant/></recording>"
    )
    assert metadata.datamode == "complete"
    assert metadata.participants == (MetadataParticipant("p"),)
    assert metadata.warnings == (
        "rs-metadata: unknown namespace 'urn:example:other'",
        "rs-metadata: <stream> without an id ignored",
        "rs-metadata: <participant> without an id ignored",
        "rs-metadata: unknown datamode 'sometimes', taken as complete",
    )
    assert metadata.well_formed is True


# -- merge ----------------------------------------------------------------------------------
def _snapshot() -> RecordingMetadata:
    return parse_metadata((FIXTURES / "rfc7865_complete.xml").read_bytes())


def _partial(body: str) -> RecordingMetadata:
    return parse_metadata(
        (f"<recording xmlns='{NS_RFC7865}'><datamode>partial</datamode>{body}</recording>").encode()
    )


def test_merge_complete_snapshot_replaces() -> None:
    previous = _snapshot()
    update = parse_metadata(
        b"<recording><datamode>complete</datamode><session session_id='S9'/></recording>"
    )
    assert merge(previous, update) is update


def test_merge_adds_a_participant_and_a_stream() -> None:
    merged = merge(
        _snapshot(),
        _partial(
            "<participant participant_id='P3'><nameID aor='sip:carol@example.com'/></participant>"
            "<stream stream_id='ST3' session_id='S1'><label>3</label></stream>"
            "<participantstreamassoc participant_id='P3'><send>ST3</send></participantstreamassoc>"
            "<participantsessionassoc participant_id='P3' session_id='S1'>"
            "<associate-time>2024-01-02T03:05:00Z</associate-time></participantsessionassoc>"
        ),
    )
    assert [p.participant_id for p in merged.participants] == ["P1", "P2", "P3"]
    assert [s.label for s in merged.streams] == ["1", "2", "3"]
    assert merged.participants_sending("3")[0].aor == "sip:carol@example.com"
    assert merged.datamode == "complete"
    assert merged.recording_session_id == "S1"


def test_merge_replaces_stream_associations_and_keeps_names() -> None:
    merged = merge(
        _snapshot(),
        _partial(
            "<participantstreamassoc participant_id='P1'><recv>ST2</recv></participantstreamassoc>"
        ),
    )
    alice = merged.participant("P1")
    assert alice is not None
    assert (alice.aor, alice.name, alice.sends, alice.receives) == (
        "sip:alice@example.com",
        "Alice & Co",
        (),
        ("ST2",),
    )
    # A participant the update does not mention keeps its streams.
    assert merged.labels_sent_by("P2") == ("2",)


def test_merge_disassociation_and_reassociation() -> None:
    left = merge(
        _snapshot(),
        _partial(
            "<participantsessionassoc participant_id='P1' session_id='S1'>"
            "<disassociate-time>2024-01-02T03:06:00Z</disassociate-time>"
            "</participantsessionassoc>"
        ),
    )
    alice = left.participant("P1")
    assert alice is not None
    assert (alice.disassociate_time, alice.sends, alice.receives) == (
        "2024-01-02T03:06:00Z",
        (),
        (),
    )
    assert left.participants_receiving("2") == ()
    back = merge(
        left,
        _partial(
            "<participantsessionassoc participant_id='P1' session_id='S1'>"
            "<associate-time>2024-01-02T03:07:00Z</associate-time></participantsessionassoc>"
            "<participantstreamassoc participant_id='P1'><send>ST1</send></participantstreamassoc>"
        ),
    )
    alice = back.participant("P1")
    assert alice is not None
    assert (alice.disassociate_time, alice.associate_time, alice.sends) == (
        None,
        "2024-01-02T03:07:00Z",
        ("ST1",),
    )


def test_merge_new_participant_that_already_left() -> None:
    merged = merge(
        _snapshot(),
        _partial(
            "<participant participant_id='P9'><send>ST1</send></participant>"
            "<participantsessionassoc participant_id='P9' session_id='S1'>"
            "<disassociate-time>2024-01-02T03:06:00Z</disassociate-time>"
            "</participantsessionassoc>"
        ),
    )
    assert merged.participant("P9") == MetadataParticipant(
        "P9", disassociate_time="2024-01-02T03:06:00Z", has_stream_assoc=True
    )


def test_merge_stream_relabel_and_bookkeeping() -> None:
    previous = replace(_snapshot(), warnings=("old",), well_formed=True)
    update = replace(
        _partial("<stream stream_id='ST2'><mode>mixed</mode></stream>"),
        warnings=("new",),
        well_formed=False,
        correlation_ids=(("genesys_uuid", "00a1b2c3-genesys"), ("avaya_ucid", "U")),
    )
    merged = merge(previous, update)
    assert merged.stream("ST2") == MetadataStream("ST2", "2", "S1", "mixed")
    assert merged.warnings == ("old", "new")
    assert merged.well_formed is False
    assert merged.correlation_ids == (("genesys_uuid", "00a1b2c3-genesys"), ("avaya_ucid", "U"))


def test_partial_corpus_updates_merge_like_the_sidecars_say() -> None:
    snapshot, _ = corpus_metadata("rfc7865_alice_bob_4streams_invite.sip")
    hold, _ = corpus_metadata("rfc7865_hold_reinvite_partial.sip")
    resume, _ = corpus_metadata("rfc7865_resume_reinvite_partial.sip")
    held = merge(snapshot, hold)
    assert held.labels_sent_by("srfBElmCRp2QB23b7Mpk0w==") == ()
    assert held.labels_sent_by("zSfPoSvdSDCmU3A3TRDxAw==") == ("98", "99")
    resumed = merge(held, resume)
    # The same associations as the snapshot (the resume lists Bob's recv in another order).
    assert [(set(p.sends), set(p.receives)) for p in resumed.participants] == [
        (set(p.sends), set(p.receives)) for p in snapshot.participants
    ]
