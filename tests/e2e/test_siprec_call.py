"""A SIPREC call end to end: SIPp signals, RTP flows, a stereo recording comes out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
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


def test_two_stream_call_becomes_a_stereo_recording(server: ServerProcess, tmp_path: Path) -> None:
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
    # The default format: Ogg Opus, one party per channel, named by the default template.
    assert (recording["format"], recording["codec"], recording["channels"]) == ("ogg", "opus", 2)
    assert recording["file_name"].endswith(f"-{recording['id']}.ogg")
    assert [c["participants"] for c in recording["channel_map"]] == [
        ["sip:agent-2001@pbx.example.com"],
        ["sip:+15550100@carrier.example.net"],
    ]
    out = tmp_path / "call.ogg"
    result = server.cli("recordings", "get", str(recording["id"]), "--output", str(out))
    assert result.returncode == 0, result.stderr
    with av.open(str(out)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "opus" and stream.codec_context.channels == 2
        rate = stream.codec_context.sample_rate
        pcm = np.concatenate([f.to_ndarray() for f in container.decode(stream)], axis=1)
    left, right = pcm[0] * 32768, pcm[1] * 32768
    assert abs(len(left) / rate - recording["duration_s"]) < 0.05
    # The customer's 1 kHz tone is alone on the right; the agent's speech on the left.
    assert abs(_dominant_frequency(right, rate) - 1000.0) < 5
    assert np.sqrt(np.mean(left**2)) > 100
    assert abs(_dominant_frequency(left, rate) - 1000.0) > 20
    # After the customer's 4 s tone the agent talks alone: nothing of it on the right.
    alone = slice(int(5.0 * rate), int(6.5 * rate))
    assert _db(left[alone]) - _db(right[alone]) > 30


def _db(samples: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(samples.astype(np.float64) ** 2) + 1e-9))
