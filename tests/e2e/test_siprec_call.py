"""A SIPREC call end to end: SIPp signals, RTP flows, a stereo WAV comes out."""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Any

import numpy as np

from tests.e2e.harness import ServerProcess
from tests.e2e.rtp_sender import RtpSender
from tests.e2e.sipp import Scenario, metadata_xml, multipart, run_sipp, sdp


def _ready_call(calls: list[dict[str, Any]]) -> dict[str, Any] | None:
    for call in calls:
        if call["recordings"] and all(
            r["state"] in ("ready", "failed") for r in call["recordings"]
        ):
            return call
    return None


def _dominant_frequency(samples: np.ndarray, rate: int = 8000) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    spectrum[0] = 0
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


def test_two_stream_call_becomes_a_stereo_wav(server: ServerProcess, tmp_path: Path) -> None:
    body = multipart(sdp(("1", "2")), metadata_xml())
    sipp = run_sipp(Scenario.call(body, hold_ms=8000), server, tmp_path / "sipp")
    ports = sipp.answer_ports()
    assert len(ports) == 2 and all(p > 0 for p in ports)
    sender = RtpSender(("127.0.0.1", ports[1]), frequency=1000.0, seconds=4.0)
    sender.start()
    assert sipp.wait() == 0, sipp.output()
    sender.join()

    call = server.wait_for(_ready_call, what="a finalized recording")
    assert len(call["segments"]) == 1
    assert call["segments"][0]["state"] == "captured"
    assert call["segments"][0]["end_reason"] == "bye"
    assert {p["aor"] for p in call["participants"]} == {
        "sip:agent-2001@pbx.example.com",
        "sip:+15550100@carrier.example.net",
    }
    streams = sorted(call["streams"], key=lambda s: s["label"])
    assert [s["label"] for s in streams] == ["1", "2"]
    assert all(s["codec"] == "PCMA" for s in streams)
    # SIPp's g711a.pcap holds 236 RTP packets of 30 ms (7.08 s); our sender sent 200.
    assert streams[0]["packets"] == 236
    assert streams[0]["lost"] == 0
    assert streams[1]["packets"] == sender.sent == 200
    assert streams[1]["lost"] == 0
    assert streams[0]["sent_by"] == ["sip:agent-2001@pbx.example.com"]
    assert streams[1]["sent_by"] == ["sip:+15550100@carrier.example.net"]

    recording = call["recordings"][0]
    assert recording["state"] == "ready", recording
    assert recording["format"] == "wav"
    assert recording["channels"] == 2
    out = tmp_path / "call.wav"
    result = server.cli("recordings", "get", str(recording["id"]), "--output", str(out))
    assert result.returncode == 0, result.stderr
    with wave.open(str(out)) as wav:
        assert wav.getnchannels() == 2
        assert wav.getframerate() == 8000
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    left, right = frames[0::2], frames[1::2]
    assert abs(len(left) / 8000 - recording["duration_s"]) < 0.05
    # The customer's 1 kHz tone is alone on the right; the agent's speech on the left.
    assert abs(_dominant_frequency(right) - 1000.0) < 5
    assert np.sqrt(np.mean(left.astype(np.float64) ** 2)) > 100
    assert abs(_dominant_frequency(left) - 1000.0) > 20
