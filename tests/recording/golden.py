"""Golden recording sessions for recording-layer tests: a segment built from a corpus
INVITE and the capture a recorder would have written for it."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
from sqlalchemy import select

from callvault.config import Settings, load_settings
from callvault.db import Database
from callvault.db.models import Stream
from callvault.media.timeline import StreamPacket
from callvault.recording.store import create_segment, end_segment
from callvault.runtime_settings import set_settings
from tests.media import payloads
from tests.recording.helpers import new_segment

START = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
CUBE = "cisco_cube_2streams_gtd.sip"  # two streams, labels 1 and 2: 7301 sends 1, 7300 sends 2
PORTS = (30000, 30002)
SBC = ("192.0.2.10", 7000)
RECORDER = "127.0.0.1"

Pcm = npt.NDArray[np.int16]


def settings_for(tmp_path: Path) -> Settings:
    return load_settings({"data_dir": str(tmp_path)}, environ={})


def configure(database: Database, tmp_path: Path, values: dict[str, str]) -> None:
    """Save runtime settings as an administrator would (``callvault settings set``)."""
    database.write(
        lambda s: set_settings(s, values, updated_by="test", base=settings_for(tmp_path))
    )


def captured_session(
    database: Database,
    corpus: str = CUBE,
    *,
    start: float = START,
    seconds: float = 3.0,
    codec: dict[str, Any] | None = None,
    first_port: int = PORTS[0],
    capture: str | None = None,
) -> tuple[int, int]:
    """A captured segment from ``corpus``; returns (recording id, segment id)."""
    new = new_segment(corpus, started_at=start, first_port=first_port)
    if capture is not None:
        new = dataclasses.replace(new, capture_path=capture)
    ids = database.write(lambda s: create_segment(s, new))
    if codec is not None:

        def recode(s: Any) -> None:
            for stream in s.scalars(select(Stream).where(Stream.segment_id == ids.segment_id)):
                stream.payload_types = {"96": codec}

        database.write(recode)
    recording_id = database.write(
        lambda s: end_segment(s, ids.segment_id, "bye", start + seconds, [])
    )
    assert recording_id is not None
    return recording_id, ids.segment_id


def write_session_capture(
    tmp_path: Path, flows: dict[int, list[StreamPacket]], corpus: str = CUBE
) -> None:
    path = tmp_path / "captures" / f"{corpus}.pcap"
    path.parent.mkdir(parents=True, exist_ok=True)
    payloads.write_capture(path, [(SBC, (RECORDER, port), p) for port, p in flows.items()])


def tone_packets(
    freq: float, *, t0: float, seconds: float = 2.0, ssrc: int = 1
) -> list[StreamPacket]:
    return payloads.encode_pcmu(payloads.tone(freq, seconds, 8000)).packets(
        t0=t0, ssrc=ssrc, payload_type=0
    )


def two_tones(tmp_path: Path, t0: float = START + 0.5) -> None:
    write_session_capture(
        tmp_path,
        {PORTS[0]: tone_packets(500, t0=t0), PORTS[1]: tone_packets(1500, t0=t0, ssrc=2)},
    )


def decode_file(path: Path) -> tuple[str, int, npt.NDArray[np.float64]]:
    """(codec, sample rate, samples shaped (channels, n)) as FFmpeg reads the file."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        codec, rate = stream.codec_context.name, stream.codec_context.sample_rate
        blocks = [frame.to_ndarray() for frame in container.decode(stream)]
    data = np.concatenate(blocks, axis=1).astype(np.float64)
    if data.shape[0] == 1 and stream.codec_context.channels == 2:  # packed stereo
        data = data.reshape(-1, 2).T
    if data.dtype.kind == "f" and np.abs(data).max() <= 1.5:
        data = data * 32768
    return codec, rate, data


def peak(samples: npt.NDArray[Any], rate: int) -> float:
    return payloads.dominant_frequency(samples, rate)


def level_db(samples: npt.NDArray[Any]) -> float:
    """RMS level in dB below full scale (int16)."""
    power = np.mean(np.asarray(samples, np.float64) ** 2) / 32768.0**2
    return float(10 * np.log10(power + 1e-12))
