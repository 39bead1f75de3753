"""The finalize job, from golden captures to the files and facts a user gets.

Each test builds a recording session from a real vendor INVITE (the corpus), writes the
capture a recorder would have written (tests/media/payloads.py encodes the audio with
real codecs), runs the job and checks the file as a listener would: decoded with PyAV,
which tone is on which channel, where the silence is, what the player is told.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from callvault.db import Database
from callvault.db.models import Recording, Stream
from callvault.db.queries import recordings_due
from callvault.recording.finalize import finalize_recording
from tests.media import payloads
from tests.recording.golden import (
    CUBE,
    PORTS,
    RECORDER,
    SBC,
    START,
    captured_session,
    configure,
    decode_file,
    level_db,
    peak,
    settings_for,
    tone_packets,
    two_tones,
    write_session_capture,
)


def _recording(database: Database, recording_id: int) -> Recording:
    recording = database.read(lambda s: s.get(Recording, recording_id))
    assert recording is not None
    return recording


def _run(database: Database, tmp_path: Path, recording_id: int, **kw: Any) -> str:
    return finalize_recording(
        database, tmp_path, recording_id, settings=settings_for(tmp_path), **kw
    )


# -- the default: stereo Ogg Opus ---------------------------------------------------------


def test_two_party_call_becomes_stereo_ogg_opus(database: Database, tmp_path: Path) -> None:
    recording_id, _ = captured_session(database)
    two_tones(tmp_path)

    assert _run(database, tmp_path, recording_id) == "ready"
    recording = _recording(database, recording_id)
    assert (recording.format, recording.codec) == ("ogg", "opus")
    assert (recording.channels, recording.sample_rate, recording.duration_s) == (2, 8000, 3.0)
    assert recording.layout == "stereo" and recording.channel_rule == "internal"
    assert recording.options["opus_bitrate_per_channel"] == 12
    assert [(c["channel"], c["participants"], c["labels"]) for c in recording.channel_map] == [
        ("left", ["sip:7301@35.162.237.204"], ["1"]),
        ("right", ["sip:7300@35.162.237.204"], ["2"]),
    ]
    # Named by the default template in UTC: date, time, the other party's number, the id.
    assert recording.file_name == f"2023-11-14_22.13.20-7300-{recording_id}.ogg"
    assert recording.path == f"recordings/2023/11/14/{recording.file_name}"
    path = tmp_path / str(recording.path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == recording.sha256
    assert path.stat().st_size == recording.size_bytes

    codec, rate, pcm = decode_file(path)
    assert codec == "opus" and pcm.shape[0] == 2
    voiced = slice(int(0.8 * rate), int(2.3 * rate))
    assert peak(pcm[0, voiced], rate) == pytest.approx(500, abs=5)
    assert peak(pcm[1, voiced], rate) == pytest.approx(1500, abs=5)
    assert level_db(pcm[0, : int(0.4 * rate)]) < -60  # before the first packet: silence

    # What the player draws: 5 peaks per second per channel, talk intervals per party.
    assert recording.peaks_per_second == 5.0
    assert recording.peaks is not None and len(recording.peaks) == 2 * 15
    talk = {t["party"]: t["intervals"] for t in recording.analysis["talk"]}
    (left_talk,) = talk["sip:7301@35.162.237.204"]
    assert left_talk[0] == pytest.approx(0.5, abs=0.1) and left_talk[1] == pytest.approx(
        2.5, abs=0.1
    )

    # Idempotent: a second run (a re-delivered job) changes nothing.
    assert _run(database, tmp_path, recording_id) == "skipped"


def test_missing_capture_fails_with_a_reason(database: Database, tmp_path: Path) -> None:
    recording_id, _ = captured_session(database, "sonus_ribbon_sbc_2streams.sip")
    assert _run(database, tmp_path, recording_id) == "failed"
    recording = _recording(database, recording_id)
    assert recording.state == "failed" and "capture file" in (recording.error or "")


# -- every codec in ------------------------------------------------------------------------

_SECONDS = 2.0


def _codec_case(name: str) -> tuple[payloads.EncodedStream, payloads.EncodedStream, int]:
    """Two encoded tones (left 440 Hz, right 1000 Hz) and the rate the file should have."""
    rate = 16000 if name in ("G722", "AMR-WB", "opus") else 8000
    left, right = (payloads.tone(f, _SECONDS, rate) for f in (440, 1000))
    encoders = {
        "PCMU": payloads.encode_pcmu,
        "PCMA": payloads.encode_pcma,
        "G722": payloads.encode_g722,
        "G729": payloads.encode_g729,
        "GSM": payloads.encode_gsm,
        "AMR": payloads.encode_amr,
        "AMR-WB": payloads.encode_amr_wb,
        "opus": payloads.encode_opus,
    }
    encode = encoders[name]
    return encode(left), encode(right), rate


@pytest.mark.parametrize("codec", ["PCMU", "PCMA", "G722", "G729", "GSM", "AMR", "AMR-WB", "opus"])
def test_every_codec_becomes_a_recording(database: Database, tmp_path: Path, codec: str) -> None:
    left, right, rate = _codec_case(codec)
    info = {
        "codec": codec,
        "clock_rate": left.clock_rate,
        "channels": left.channels,
        "fmtp": left.fmtp,
    }
    recording_id, _ = captured_session(database, codec=info)
    t0 = START + 0.5
    write_session_capture(
        tmp_path,
        {
            PORTS[0]: left.packets(t0=t0, ssrc=11, payload_type=96),
            PORTS[1]: right.packets(t0=t0, ssrc=22, payload_type=96),
        },
    )
    configure(database, tmp_path, {"recording.format": "wav", "recording.codec": "pcm"})

    assert _run(database, tmp_path, recording_id) == "ready"
    recording = _recording(database, recording_id)
    assert (recording.channels, recording.sample_rate, recording.duration_s) == (2, rate, 3.0)
    _, file_rate, pcm = decode_file(tmp_path / str(recording.path))
    assert file_rate == rate and pcm.shape == (2, 3 * rate)
    voiced = slice(int(0.9 * rate), int(2.2 * rate))
    assert peak(pcm[0, voiced], rate) == pytest.approx(440, abs=8)
    assert peak(pcm[1, voiced], rate) == pytest.approx(1000, abs=8)
    assert level_db(pcm[0, voiced]) > -30
    assert level_db(pcm[0, : int(0.4 * rate)]) < -60  # silence before the first packet
    decoded = {s["stream_id"]: s for s in recording.analysis["streams"]}
    assert all(s["decoded"] >= len(left.payloads) - 1 for s in decoded.values())


# -- layouts -------------------------------------------------------------------------------


def test_mono_layout_mixes_both_parties(database: Database, tmp_path: Path) -> None:
    recording_id, _ = captured_session(database)
    two_tones(tmp_path)
    configure(database, tmp_path, {"recording.layout": "mono", "recording.format": "wav"})
    assert _run(database, tmp_path, recording_id) == "ready"
    recording = _recording(database, recording_id)
    assert recording.channels == 1 and recording.layout == "mono"
    _, rate, pcm = decode_file(tmp_path / str(recording.path))
    spectrum = np.abs(np.fft.rfft(pcm[0, int(0.8 * rate) : int(2.3 * rate)]))
    freqs = np.fft.rfftfreq(int(2.3 * rate) - int(0.8 * rate), 1 / rate)
    assert set(np.round(freqs[np.argsort(spectrum)[-2:]], -1)) == {500.0, 1500.0}


def test_separate_layout_makes_one_file_per_party(database: Database, tmp_path: Path) -> None:
    recording_id, segment_id = captured_session(database)
    two_tones(tmp_path)
    configure(database, tmp_path, {"recording.layout": "separate"})
    assert _run(database, tmp_path, recording_id) == "ready"
    rows = database.read(
        lambda s: list(s.scalars(select(Recording).where(Recording.segment_id == segment_id)))
    )
    assert sorted((r.kind, r.participant_key is not None, r.channels) for r in rows) == [
        ("participant", True, 1),
        ("segment", True, 1),
    ]
    tones = {}
    for row in rows:
        _, rate, pcm = decode_file(tmp_path / str(row.path))
        tones[row.channel_map[0]["participants"][0]] = round(
            peak(pcm[0, int(0.8 * rate) : int(2.3 * rate)], rate), -1
        )
    assert tones == {"sip:7301@35.162.237.204": 500, "sip:7300@35.162.237.204": 1500}
    assert len({r.path for r in rows}) == 2  # same template, distinct names
    # A rerun finds the participant's row again instead of adding one.
    assert _run(database, tmp_path, recording_id, force=True) == "ready"
    assert (
        database.read(
            lambda s: len(
                list(s.scalars(select(Recording).where(Recording.segment_id == segment_id)))
            )
        )
        == 2
    )


def test_left_channel_rule_by_aor(database: Database, tmp_path: Path) -> None:
    recording_id, _ = captured_session(database)
    two_tones(tmp_path)
    configure(database, tmp_path, {"recording.left_channel": "aor:sip:7300@*"})
    assert _run(database, tmp_path, recording_id) == "ready"
    recording = _recording(database, recording_id)
    assert recording.channel_rule == "aor:sip:7300@*"
    assert recording.channel_map[0]["participants"] == ["sip:7300@35.162.237.204"]
    _, rate, pcm = decode_file(tmp_path / str(recording.path))
    assert peak(pcm[0, int(0.8 * rate) : int(2.3 * rate)], rate) == pytest.approx(1500, abs=5)


# -- formats -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "codec", "extension"),
    [
        ({"recording.format": "mp3"}, "mp3float", "mp3"),  # FFmpeg's MP3 decoder's name
        ({"recording.format": "ogg", "recording.codec": "vorbis"}, "vorbis", "ogg"),
        ({"recording.format": "wav", "recording.codec": "alaw"}, "pcm_alaw", "wav"),
        ({"recording.format": "wav", "recording.codec": "ulaw"}, "pcm_mulaw", "wav"),
        (
            {"recording.format": "wav", "recording.codec": "gsm", "recording.layout": "mono"},
            "gsm_ms",
            "wav",
        ),
    ],
)
def test_every_format_opens_in_ffmpeg(
    database: Database, tmp_path: Path, settings: dict[str, str], codec: str, extension: str
) -> None:
    recording_id, _ = captured_session(database)
    two_tones(tmp_path)
    configure(database, tmp_path, settings)
    assert _run(database, tmp_path, recording_id) == "ready"
    recording = _recording(database, recording_id)
    path = tmp_path / str(recording.path)
    assert path.suffix == f".{extension}"
    found, rate, pcm = decode_file(path)
    assert found == codec
    assert pcm.shape[1] / rate == pytest.approx(3.0, abs=0.15)
    assert peak(pcm[0, int(0.8 * rate) : int(2.3 * rate)], rate) in (
        pytest.approx(500, abs=8),
        pytest.approx(1500, abs=8),
    )


# -- when the mixer runs --------------------------------------------------------------------


def test_outside_the_mixer_window_the_recording_waits(database: Database, tmp_path: Path) -> None:
    recording_id, _ = captured_session(database)
    two_tones(tmp_path)
    configure(database, tmp_path, {"mixer.windows": "daily 02:00-04:00"})
    noon = datetime(2023, 11, 15, 12, 0, tzinfo=UTC).timestamp()

    assert _run(database, tmp_path, recording_id, now=noon) == "deferred"
    recording = _recording(database, recording_id)
    assert recording.state == "waiting"
    assert recording.not_before == datetime(2023, 11, 16, 2, 0, tzinfo=UTC)
    assert (
        database.read(lambda s: recordings_due(s, datetime(2023, 11, 16, 1, 59, tzinfo=UTC))) == []
    )
    assert database.read(lambda s: recordings_due(s, recording.not_before)) == [recording_id]

    inside = datetime(2023, 11, 16, 2, 0, 30, tzinfo=UTC).timestamp()
    assert _run(database, tmp_path, recording_id, now=inside) == "ready"
    assert _recording(database, recording_id).not_before is None


def test_an_operator_can_run_it_outside_the_window(database: Database, tmp_path: Path) -> None:
    recording_id, _ = captured_session(database)
    two_tones(tmp_path)
    configure(database, tmp_path, {"mixer.windows": "daily 02:00-04:00"})
    noon = datetime(2023, 11, 15, 12, 0, tzinfo=UTC).timestamp()
    assert _run(database, tmp_path, recording_id, now=noon, force=True) == "ready"


# -- pathologies on the timeline ------------------------------------------------------------


def test_loss_pause_late_start_and_dtmf_reach_the_player(
    database: Database, tmp_path: Path
) -> None:
    recording_id, segment_id = captured_session(database, seconds=6.0)
    t0 = START + 0.5
    left = [p for p in tone_packets(500, t0=t0, seconds=5.0) if not 2.0 <= p.arrival - t0 < 2.5]
    right = tone_packets(1500, t0=START + 2.0, seconds=3.0, ssrc=2)  # starts late
    right = [p for p in right if not 3.0 <= p.arrival - START < 4.0]
    dtmf = payloads.dtmf_packets("42", t0=START + 1.0, ssrc=1, payload_type=101, seq0=60000)
    write_session_capture(
        tmp_path, {PORTS[0]: sorted(left + dtmf, key=lambda p: p.arrival), PORTS[1]: right}
    )

    def pause_right(s: Any) -> None:
        from callvault.db.models import PausedInterval

        stream = s.scalars(
            select(Stream).where(Stream.segment_id == segment_id, Stream.media_index == 1)
        ).one()
        s.add(
            PausedInterval(
                stream_id=stream.id,
                started_at=datetime.fromtimestamp(START + 3.0, UTC),
                ended_at=datetime.fromtimestamp(START + 4.0, UTC),
                reason="inactive",
            )
        )

    database.write(pause_right)
    configure(database, tmp_path, {"recording.format": "wav"})
    assert _run(database, tmp_path, recording_id) == "ready"
    recording = _recording(database, recording_id)
    _, rate, pcm = decode_file(tmp_path / str(recording.path))

    def quiet(channel: int, a: float, b: float) -> bool:
        return bool(np.abs(pcm[channel, int(a * rate) : int(b * rate)]).max() == 0)

    # Lost packets: the first 60 ms concealed from the speech before, then silence
    # (nothing invented for half a second).
    assert not quiet(0, 2.50, 2.51)
    assert quiet(0, 2.561, 2.95)
    assert quiet(1, 0.0, 1.95)  # the right party started late
    assert quiet(1, 3.05, 3.95)  # paused
    assert not quiet(1, 4.1, 4.9)
    assert recording.analysis["paused"] == [[], [[3.0, 4.0]]]
    digits = [(d["digit"], d["channel"]) for d in recording.analysis["dtmf"]]
    assert digits == [("4", 0), ("2", 0)]
    assert recording.analysis["dtmf"][0]["at"] == pytest.approx(1.0, abs=0.03)


# -- stitching the segments of a transferred call ------------------------------------------


def test_a_transferred_call_is_stitched_on_its_timeline(database: Database, tmp_path: Path) -> None:
    # Two recording sessions of one call (the same Cisco GUID and Session-ID): the
    # second starts a second after the first ended, on other ports, in its own capture.
    first, _ = captured_session(database)
    second, _ = captured_session(
        database, start=START + 4.0, first_port=30004, capture="captures/second.pcap"
    )
    two_tones(tmp_path)
    payloads.write_capture(
        tmp_path / "captures" / "second.pcap",
        [
            (SBC, (RECORDER, 30004), tone_packets(700, t0=START + 4.5, ssrc=3)),
            (SBC, (RECORDER, 30006), tone_packets(1500, t0=START + 4.5, ssrc=4)),
        ],
    )
    assert _run(database, tmp_path, first) == "ready"
    call_id = _recording(database, first).call_id
    assert _recording(database, second).call_id == call_id
    stitched = lambda s: s.scalars(  # noqa: E731
        select(Recording).where(Recording.call_id == call_id, Recording.kind == "call")
    ).one_or_none()
    assert database.read(stitched) is None  # the second segment is not finalized yet

    assert _run(database, tmp_path, second) == "ready"
    whole = database.read(stitched)
    assert whole is not None and whole.state == "ready" and whole.segment_id is None
    assert (whole.channels, whole.duration_s) == (2, 7.0)
    assert [(s["start"], s["end"]) for s in whole.analysis["segments"]] == [(0.0, 3.0), (4.0, 7.0)]
    _, rate, pcm = decode_file(tmp_path / str(whole.path))

    def tone(channel: int, a: float, b: float) -> float:
        return round(peak(pcm[channel, int(a * rate) : int(b * rate)], rate), -1)

    assert (tone(0, 1.0, 2.0), tone(1, 1.0, 2.0)) == (500, 1500)
    assert (tone(0, 5.0, 6.0), tone(1, 5.0, 6.0)) == (700, 1500)
    assert level_db(pcm[:, int(3.1 * rate) : int(3.9 * rate)]) < -60  # between the segments
    # Made once: a re-delivered job of either segment does not make it again.
    assert _run(database, tmp_path, second) == "skipped"
    assert database.read(stitched).id == whole.id


def test_an_unreadable_capture_fails_with_the_reason(database: Database, tmp_path: Path) -> None:
    recording_id, _ = captured_session(database)
    capture = tmp_path / "captures" / f"{CUBE}.pcap"
    capture.parent.mkdir(parents=True)
    capture.write_bytes(b"this is not a pcap file at all")
    assert _run(database, tmp_path, recording_id) == "failed"
    recording = _recording(database, recording_id)
    assert recording.state == "failed"
    assert recording.error is not None and recording.error.startswith("PcapError: bad pcap magic")
    assert not list(tmp_path.rglob("*.partial"))


def test_a_bug_marks_the_recording_failed_not_processing(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recording_id, _ = captured_session(database)
    two_tones(tmp_path)

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("mixer exploded")

    monkeypatch.setattr("callvault.recording.finalize.mix", broken)
    assert _run(database, tmp_path, recording_id) == "failed"
    recording = _recording(database, recording_id)
    assert recording.error == "internal error: RuntimeError: mixer exploded"
