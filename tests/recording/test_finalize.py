"""The finalize job: capture -> stereo WAV, one participant per channel."""

from __future__ import annotations

import hashlib
import wave
from pathlib import Path

import numpy as np

from callvault.db import Database
from callvault.db.models import Recording
from callvault.recording.finalize import finalize_recording
from callvault.recording.store import create_segment, end_segment
from callvault.rtp.pcap import PcapWriter
from tests.e2e.rtp_sender import rtp_packet, tone_payloads
from tests.recording.helpers import new_segment

START = 1_700_000_000.0


def _capture(path: Path, tones: dict[int, float], seconds: float = 2.0, pt: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        writer = PcapWriter(handle)
        writer.write_header()
        streams = {
            port: tone_payloads(freq, int(seconds * 50), codec="PCMU")
            for port, freq in tones.items()
        }
        for index in range(int(seconds * 50)):
            for port, payloads in streams.items():
                data = rtp_packet(pt, index, 160 * index, port, payloads[index])
                writer.write_packet(
                    START + 0.5 + index * 0.02, ("192.0.2.10", 7000), ("127.0.0.1", port), data
                )


def _peak(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    spectrum[0] = 0
    return float(np.fft.rfftfreq(len(samples), 1 / 8000)[int(np.argmax(spectrum))])


def _ended(database: Database, name: str) -> int:
    new = new_segment(name, started_at=START)
    ids = database.write(lambda s: create_segment(s, new))
    recording_id = database.write(lambda s: end_segment(s, ids.segment_id, "bye", START + 3, []))
    assert recording_id is not None
    return recording_id


def test_two_party_call_becomes_stereo_wav(database: Database, tmp_path: Path) -> None:
    recording_id = _ended(database, "cisco_cube_2streams_gtd.sip")
    _capture(tmp_path / "captures" / "cisco_cube_2streams_gtd.sip.pcap", {30000: 500, 30002: 1500})

    assert finalize_recording(database, tmp_path, recording_id) == "ready"
    recording = database.read(lambda s: s.get(Recording, recording_id))
    assert recording is not None and recording.state == "ready"
    assert (recording.channels, recording.sample_rate) == (2, 8000)
    assert recording.duration_s == 3.0
    assert recording.channel_map == [
        {"channel": "left", "participants": ["sip:7301@35.162.237.204"], "labels": ["1"]},
        {"channel": "right", "participants": ["sip:7300@35.162.237.204"], "labels": ["2"]},
    ]
    path = tmp_path / str(recording.path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == recording.sha256
    assert path.stat().st_size == recording.size_bytes
    with wave.open(str(path)) as wav:
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    left, right = frames[0::2], frames[1::2]
    voiced = slice(int(0.6 * 8000), int(2.4 * 8000))
    assert abs(_peak(left[voiced]) - 500) < 5
    assert abs(_peak(right[voiced]) - 1500) < 5
    assert np.abs(left[: int(0.4 * 8000)]).max() == 0  # before the first packet: silence

    # Idempotent: a second run (a re-delivered job) changes nothing.
    assert finalize_recording(database, tmp_path, recording_id) == "skipped"


def test_missing_capture_fails_with_a_reason(database: Database, tmp_path: Path) -> None:
    recording_id = _ended(database, "sonus_ribbon_sbc_2streams.sip")
    assert finalize_recording(database, tmp_path, recording_id) == "skipped"
    recording = database.read(lambda s: s.get(Recording, recording_id))
    assert recording is not None and recording.state == "failed"
    assert "capture file" in (recording.error or "")


def test_codec_not_yet_decodable_fails_honestly(database: Database, tmp_path: Path) -> None:
    recording_id = _ended(database, "metaswitch_mixed_mono_initial_invite.sip")  # G729
    _capture(
        tmp_path / "captures" / "metaswitch_mixed_mono_initial_invite.sip.pcap", {30000: 440}, pt=18
    )
    assert finalize_recording(database, tmp_path, recording_id) == "failed"
    recording = database.read(lambda s: s.get(Recording, recording_id))
    assert recording is not None and recording.state == "failed"
    assert "G729" in (recording.error or "")
    assert not list((tmp_path / "recordings").rglob("*.partial"))
