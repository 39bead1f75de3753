"""A fully populated call (every table, every column) for the database tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy.orm import Session

from callvault.db import (
    ApiToken,
    AuditEvent,
    Call,
    CallGroup,
    CallKey,
    EncryptionKey,
    Group,
    LegalHold,
    MetadataEvent,
    Participant,
    PausedInterval,
    Recording,
    SavedFilter,
    Segment,
    Setting,
    ShareLink,
    Stream,
    StreamParticipant,
    User,
    UserGroup,
    Webhook,
    WebhookDelivery,
    WebSession,
)

T0 = datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)
# Written in another zone on purpose: the database must hand back the same instant, in UTC.
T0_PARIS = T0.astimezone(timezone(timedelta(hours=2)))

RAW_METADATA = (
    b'<?xml version="1.0" encoding="UTF-8"?>\r\n'
    b'<recording xmlns="urn:ietf:params:xml:ns:recording:1">'
    b"<datamode>complete</datamode></recording>\xff\xfe"
)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def add_full_call(session: Session) -> Call:
    """One ended call with one captured segment; every nullable column is set."""
    call = Call(
        uid="0123456789abcdef0123456789abcdef",
        started_at=T0_PARIS,
        ended_at=at(60.5),
        direction="inbound",
        state="ended",
        created_at=at(0.01),
        duration_s=60.5,
        search_text="sip:alice@example.com alice",
        retention_days=90,
    )
    CallKey(call=call, kind="x-broadworks-correlation-info", value="corr-1", created_at=at(0))
    segment = Segment(
        call=call,
        sip_call_id="a84b4c76e66710@pc33.example.com",
        local_tag="srs-1",
        remote_tag="src-9",
        src_address="192.0.2.10:5060",
        transport="tcp",
        user_agent="BroadWorks",
        state="captured",
        started_at=T0,
        ended_at=at(60.5),
        end_reason="bye",
        capture_path="captures/2024/05/01/call-1.pcap",
        capture_state="encrypted",
        node="rec-1",
        metadata_namespace="urn:ietf:params:xml:ns:recording:1",
        recording_session_id="ZnV5b2RmdWhz",
        group_id="7+OTCyoxTmqmqyA/1weDAg==",
    )
    alice = Participant(
        segment=segment,
        participant_key="srfBElmCRp2QB23b7Mpk0w==",
        aor="sip:alice@example.com",
        address="alice",
        name="Alice",
        associated_at=at(0),
        disassociated_at=at(60),
        service_provider_id="sp-1",
        group_id="group-1",
        user_id="alice@example.com",
        updated_at=at(1),
    )
    bob = Participant(
        segment=segment,
        participant_key="zSfPoSvdSDCmU3A3TRDxAw==",
        aor="sip:bob@example.net",
        address="bob",
        name="Bob",
        associated_at=at(0),
        disassociated_at=at(60),
        service_provider_id="sp-2",
        group_id="group-2",
        user_id="bob@example.net",
        updated_at=at(1),
    )
    stream = Stream(
        segment=segment,
        label="1",
        metadata_stream_id="UAAMm5GRQKSCMVvLyl4rFw==",
        media_index=0,
        codec="PCMA",
        payload_type=8,
        clock_rate=8000,
        local_port=20000,
        remote_address="192.0.2.10:40000",
        srtp=True,
        direction="recvonly",
        ssrc=0xFFFFFFFF,
        packets=3_000,
        bytes=5_000_000_000,
        lost=-2,
        reordered=3,
        duplicates=4,
        jitter_ms=1.25,
        ssrc_changes=1,
        garbage=7,
        first_packet_at=at(0.5),
        last_packet_at=at(60.25),
        silent_stretches=[[T0.timestamp() + 10.0, T0.timestamp() + 12.5]],
        payload_types={
            "0": {"codec": "PCMU", "clock_rate": 8000, "channels": 1, "fmtp": None},
            "101": {"codec": "telephone-event", "clock_rate": 8000, "fmtp": "0-16"},
        },
        updated_at=at(61),
    )
    StreamParticipant(stream=stream, participant=alice, role="send")
    StreamParticipant(stream=stream, participant=bob, role="recv")
    PausedInterval(stream=stream, started_at=at(20), ended_at=at(25), reason="hold")
    MetadataEvent(
        segment=segment,
        received_at=at(0),
        sip_method="INVITE",
        cseq=101,
        content_type="application/rs-metadata+xml",
        datamode="complete",
        raw=RAW_METADATA,
        warnings=["unknown element <foo>"],
    )
    Recording(
        uid="fedcba9876543210fedcba9876543210",
        call=call,
        segment=segment,
        kind="segment",
        format="wav",
        codec="pcm_s16le",
        channels=2,
        sample_rate=8000,
        duration_s=60.0,
        size_bytes=5_000_000_000,
        sha256="ab" * 32,
        path="recordings/2024/05/01/call-1.wav",
        state="failed",
        error="decoder exploded",
        channel_map=[{"channel": 0, "participants": ["sip:alice@example.com"], "labels": ["1"]}],
        layout="stereo",
        channel_rule="aor:sip:1*@example.com",
        options={"bitrate_per_channel": 12000},
        file_name="2024-05-01_12.00.00-1001-1.ogg",
        participant_key="p-alice",
        not_before=at(3600),
        peaks=bytes(range(256)),
        peaks_per_second=5.0,
        analysis={"talk": [[0, 1.5, 3.25]], "dtmf": [{"at": 2.0, "digit": "5"}]},
        attempts=3,
        encrypted=True,
        key_fingerprint="0123456789ABCDEF0123456789ABCDEF01234567",
        store="s3",
        stored_at=at(70),
        upload_attempts=2,
        next_upload_at=at(65),
        upload_error="S3 answered 503 on the first try",
        retain_until=at(86400 * 90),
        deleted_at=at(86400 * 91),
        created_at=at(61),
        started_at=at(62),
        ready_at=at(63),
    )
    session.add(call)
    session.add(Setting(name="recording.format", value="ogg", updated_by="admin", updated_at=at(1)))
    session.flush()
    _add_people(session, call)
    session.add(
        EncryptionKey(
            fingerprint="0123456789ABCDEF0123456789ABCDEF01234567",
            public_key="-----BEGIN PGP PUBLIC KEY BLOCK-----\n...",
            private_key=b"encrypted at rest",
            passphrase_protected=True,
            user_ids=["Recordings <rec@example.com>"],
            algorithm="rsa3072",
            expires_at=at(86400 * 365),
            active=True,
            created_at=at(0),
            created_by="admin",
        )
    )
    session.add(
        LegalHold(
            call_id=call.id,
            recording_id=call.recordings[0].id,
            reason="case 2024-17",
            set_by="admin",
            set_at=at(100),
            released_by="admin",
            released_at=at(200),
        )
    )
    session.flush()
    return call


def _add_people(session: Session, call: Call) -> None:
    """Users, groups and everything hanging off them, every column set."""
    agents = Group(name="agents", created_at=at(0))
    sales = Group(name="sales", created_at=at(0))
    session.add_all([agents, sales])
    session.flush()
    user = User(
        username="anna",
        extension="2001",
        display_name="Anna Agent",
        email="anna@example.com",
        timezone="Europe/Warsaw",
        role="supervisor",
        scope="primary_group",
        password_hash="$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
        primary_group_id=agents.id,
        addresses=["sip:anna@example.com"],
        active=True,
        failed_logins=1,
        locked_until=at(90),
        password_changed_at=at(2),
        last_login_at=at(3),
        created_at=at(0),
    )
    session.add(user)
    session.flush()
    recording = call.recordings[0]
    session.add_all(
        [
            UserGroup(user_id=user.id, group_id=sales.id),
            CallGroup(call_id=call.id, group_id=sales.id),
            WebSession(
                id="ab" * 32,
                user_id=user.id,
                csrf_token="cd" * 32,
                created_at=at(4),
                last_seen_at=at(5),
                expires_at=at(86400),
                ip="192.0.2.50",
                user_agent="Mozilla/5.0",
            ),
            ApiToken(
                user_id=user.id,
                name="crm",
                prefix="cvt_ab12",
                token_hash="ef" * 32,
                scopes=["calls:read", "recordings:read"],
                created_at=at(6),
                last_used_at=at(7),
                expires_at=at(86400 * 30),
                revoked_at=at(8),
            ),
            SavedFilter(
                user_id=user.id, name="long calls", query="min_duration=60", created_at=at(9)
            ),
            AuditEvent(
                at=at(10),
                user_id=user.id,
                actor="anna",
                action="recording.play",
                target_type="recording",
                target_id=str(recording.id),
                ip="192.0.2.50",
                detail={"range": "bytes=0-"},
            ),
            ShareLink(
                uid="5" * 32,
                recording_id=recording.id,
                call_id=call.id,
                created_by=user.id,
                created_at=at(11),
                expires_at=at(86400 * 7),
                revoked_at=at(12),
                passcode_hash="$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$cGFzcw",
                uses=2,
                last_used_at=at(13),
            ),
        ]
    )
    hook = Webhook(
        url="https://crm.example.com/hooks/callvault",
        secret="s3cret",
        events=["recording.ready", "call.ended"],
        description="CRM",
        active=True,
        created_at=at(14),
    )
    session.add(hook)
    session.flush()
    session.add(
        WebhookDelivery(
            webhook_id=hook.id,
            event="recording.ready",
            event_id="7" * 32,
            payload={"recording": {"id": recording.id}},
            state="delivered",
            attempts=2,
            next_attempt_at=at(15),
            last_status=204,
            last_error="HTTP 503 on the first attempt",
            created_at=at(14),
            delivered_at=at(16),
        )
    )
    session.flush()
