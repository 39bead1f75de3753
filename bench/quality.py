"""End-to-end quality: known speech through real SIPREC calls into the finished recording.

A benchmark, not a test: it prints markdown tables (and saves them in bench/out/).

It starts a real ``callvault serve`` on loopback (own data directory, free ports; the
``Server`` of ``load.py``) and, for each codec in, sets up SIPREC calls with
``siprec_client.py``: multipart INVITE, two sendonly m-lines (labels 1 and 2) offering
that codec, metadata naming an agent ``sip:2001@pbx.example.com`` (sends stream 1) and a
customer ``sip:+48221234567@carrier.example`` (sends stream 2). Each party's speech
(espeak-ng, the sentences of ``formats.py``: 8 kHz for G.711 and G.729, 16 kHz for G.722
and Opus, which is sent at 32 kbit/s) is encoded by ``tests/media/payloads.py`` and sent
as RTP to the answer's ports, paced 20 ms, timestamps from the codec, silence sent too
(no VAD). Scenarios: "turns" (one talks, then the other, never both), "double" (both
talk all the time) and, for G.711, "turns, 5 % loss" (each sender skips exactly 5 % of
its packets, chosen at random with a fixed seed). All calls run at once; then BYE, wait
until ``callvault calls list --json`` shows every recording ready, fetch each with
``callvault recordings get`` and decode it with PyAV.

Measured per channel (the party's channel comes from the recording's channel map):

* lag: where the party's speech sits in the recording (cross-correlation; the
  recording starts at the INVITE). "skew" is the agent's lag minus the customer's: both
  were sent at the same instant, so anything but ~0 means misaligned channels. "lag -
  1st arrival" compares it with the first packet's arrival as the recorder stored it
  (the timeline follows the lower envelope of the arrival offsets, so a first packet
  sent a little late shows as a small negative number).
* PESQ (``pesq``: P.862 "nb" at 8 kHz, and for G.722/Opus also "wb" at 16 kHz; both
  signals resampled by the same libswresample path) of the aligned channel against
  (i) "sent": the party's payloads decoded by FFmpeg, all of them even where the sender
  skipped some (lost packets count against the recording), and (ii) "orig": the speech
  before the codec.
* isolation: while one party talks alone (turns), the other channel's level below the
  talking one, dB (the worse direction; digital silence shows as ">= 90").
* size: KiB per minute of recording, and for double talk the KiB per minute while both
  talk (the file's packets in that span, plus the container's share of overhead): the
  figure the size target is about.

Targets (issue 3) hold for G.711 in and the default format out; they are checked only
when no setting was changed.

    .venv/bin/python bench/quality.py [--codecs pcmu,g722,g729,opus] [--keep-data]
        [--format ogg|mp3|wav] [--set recording.opus_bitrate=16 ...] [--sentences 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, cast

import av
import numpy as np
import numpy.typing as npt
import soundfile
from av.audio.codeccontext import AudioCodecContext
from pesq import PesqError, pesq

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT), str(ROOT / "src")]

import formats  # noqa: E402  (espeak-ng voices and sentences)
import load  # noqa: E402
import report  # noqa: E402
import siprec_client  # noqa: E402
from siprec_client import MediaOffer  # noqa: E402
from tests.media import payloads  # noqa: E402

Pcm = npt.NDArray[np.int16]
Audio = npt.NDArray[np.float64]
Intervals = list[tuple[int, int]]

AGENT = ("sip:2001@pbx.example.com", "Anna Agent")
CUSTOMER = ("sip:+48221234567@carrier.example", "Customer")
PAD_S = 0.3  # silence sent before the first and after the last word
PAUSE_S = 0.6  # between turns
LOSS = 0.05
CLI = str(load.CALLVAULT)


@dataclass(frozen=True)
class Codec:
    label: str
    rate: int  # PCM rate into the encoder (and of the "sent" reference)
    offer: MediaOffer
    encode: Callable[[Pcm], payloads.EncodedStream]
    decoder: str  # PyAV decoder for the "sent" reference
    clock: int = 8000  # RTP clock
    decoder_rate: int = 0  # what that decoder puts out, if not ``rate``


_OPUS = partial(payloads.encode_opus, rate=16000, bitrate=32000)
_G729 = MediaOffer(18, "G729/8000", "annexb=no")
_OPUS_OFFER = MediaOffer(111, "opus/48000/2", "useinbandfec=1")
CODECS = {
    "pcmu": Codec("G.711 µ-law", 8000, siprec_client.PCMU, payloads.encode_pcmu, "pcm_mulaw"),
    "g722": Codec("G.722", 16000, MediaOffer(9, "G722/8000"), payloads.encode_g722, "g722"),
    "g729": Codec("G.729A", 8000, _G729, payloads.encode_g729, "g729"),
    "opus": Codec("Opus 32k", 16000, _OPUS_OFFER, _OPUS, "libopus", 48000, 48000),
}


# -- material -----------------------------------------------------------------------


def say(voice: str, text: str, rate: int, workdir: Path) -> Pcm:
    raw, out = workdir / "raw.wav", workdir / f"{rate}.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(raw), text], check=True)
    subprocess.run(["sox", str(raw), "-r", str(rate), str(out)], check=True)
    pcm, got = soundfile.read(out, dtype="int16")
    assert got == rate
    return np.asarray(pcm, dtype=np.int16)


@dataclass(frozen=True)
class Scenario:
    name: str
    tracks: Pcm  # (2, n): agent, customer, at the codec's rate
    alone: tuple[Intervals, Intervals]  # where each party talks and the other does not
    speech_s: float  # seconds in which both talk (double) or anyone talks (turns)
    loss: float = 0.0


def turns(agent: list[Pcm], customer: list[Pcm], rate: int) -> Scenario:
    pad, pause = round(PAD_S * rate), round(PAUSE_S * rate)
    pieces = [(k, s) for pair in zip(agent, customer, strict=True) for k, s in enumerate(pair)]
    tracks = np.zeros((2, 2 * pad + sum(len(s) + pause for _, s in pieces) - pause), np.int16)
    alone: tuple[Intervals, Intervals] = ([], [])
    at = pad
    for k, clip in pieces:
        tracks[k, at : at + len(clip)] = clip
        alone[k].append((at, at + len(clip)))
        at += len(clip) + pause
    return Scenario("turns", tracks, alone, sum(len(s) for _, s in pieces) / rate)


def double(agent: list[Pcm], customer: list[Pcm], rate: int) -> Scenario:
    a, c = np.concatenate(agent), np.concatenate(customer)
    n, pad = min(len(a), len(c)), round(PAD_S * rate)
    tracks = np.zeros((2, n + 2 * pad), np.int16)
    tracks[0, pad : pad + n], tracks[1, pad : pad + n] = a[:n], c[:n]
    return Scenario("double", tracks, ([], []), n / rate)


# -- one call -----------------------------------------------------------------------


@dataclass
class Party:
    channel: int = -1
    lag_ms: float = math.nan
    arrival_ms: float = math.nan  # the first packet's arrival after the INVITE
    scores: dict[str, float] = field(default_factory=dict)  # "nb sent", "wb orig", ...
    recorder_lost: int = 0


@dataclass
class Run:
    key: str
    codec: Codec
    scenario: Scenario
    sent: list[Audio]  # per party: all its payloads decoded, at codec.rate
    packets: list[list[tuple[int, int, bytes]]]  # per party: (index, RTP ts offset, payload)
    lost: list[set[int]]  # per party: indexes of the packets its sender skips
    call: siprec_client.BenchCall | None = None
    recording: dict[str, Any] = field(default_factory=dict)
    parties: tuple[Party, Party] = field(default_factory=lambda: (Party(), Party()))
    isolation_db: float = math.nan
    active_kib_min: float = math.nan  # double talk: KiB per minute while both talk
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.codec.label} {self.scenario.name}"


def decode_payloads(codec: Codec, stream: payloads.EncodedStream) -> Audio:
    """What the far end hears: every payload decoded in order by FFmpeg, at codec.rate."""
    context = cast(AudioCodecContext, av.CodecContext.create(codec.decoder, "r"))
    context.sample_rate = codec.decoder_rate or codec.rate
    context.layout = "mono"
    frames = [f for p in stream.payloads for f in context.decode(av.Packet(p))]
    frames += context.decode(None)
    pcm = np.concatenate([np.asarray(f.to_ndarray()).reshape(-1) for f in frames])
    if codec.decoder_rate and codec.decoder_rate != codec.rate:
        pcm = resample(pcm.astype(np.int16), codec.decoder_rate, codec.rate)
    return pcm.astype(np.float64)


def prepare(key: str, codec: Codec, scenario: Scenario, seed: int) -> Run:
    rng = np.random.default_rng(seed)
    sent, packets, lost = [], [], []
    for k in range(2):
        stream = codec.encode(scenario.tracks[k])
        sent.append(decode_payloads(codec, stream))
        n = len(stream.payloads)
        lost.append({int(i) for i in rng.choice(n, round(scenario.loss * n), replace=False)})
        packets.append(list(zip(range(n), stream.timestamps, stream.payloads, strict=True)))
    return Run(key, codec, scenario, sent, packets, lost)


def rtp(pt: int, seq: int, timestamp: int, ssrc: int, payload: bytes, marker: bool) -> bytes:
    head = struct.pack("!BBHII", 0x80, marker << 7 | pt, seq & 0xFFFF, timestamp, ssrc)
    return head + payload


async def send_calls(runs: list[Run], client: siprec_client.SiprecClient) -> None:
    """Every call's RTP on one schedule; each call's BYE 0.1 s after its last packet."""
    start = time.monotonic() + 0.3
    events: list[tuple[float, int, socket.socket, tuple[str, int], bytes]] = []
    sockets, byes = [], []
    for index, run in enumerate(runs):
        assert run.call is not None
        last = 0.0
        for k in range(2):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
            ssrc, seq0, ts0 = 0x10000 * (index + 1) + k, 1000 * k + 7 * index, 123_456 * (k + 1)
            pt, dest = run.codec.offer.payload_type, ("127.0.0.1", run.call.ports[k])
            for i, offset, payload in run.packets[k]:
                due = start + offset / run.codec.clock
                last = max(last, due)
                if i not in run.lost[k]:  # a skipped packet leaves a gap in seq and time
                    data = rtp(pt, seq0 + i, ts0 + offset, ssrc, payload, i == 0)
                    events.append((due, len(events), sock, dest, data))
        byes.append(asyncio.create_task(_bye_at(client, run.call, last + 0.1)))
    events.sort()
    for due, _, sock, dest, data in events:
        if (delay := due - time.monotonic()) > 0.0005:
            await asyncio.sleep(delay)
        sock.sendto(data, dest)
    await asyncio.gather(*byes)
    for sock in sockets:
        sock.close()


async def _bye_at(
    client: siprec_client.SiprecClient, call: siprec_client.BenchCall, at: float
) -> None:
    await asyncio.sleep(max(0.0, at - time.monotonic()))
    await client.bye(call)


# -- measuring ----------------------------------------------------------------------


def resample(pcm: Pcm, from_rate: int, to_rate: int) -> Pcm:
    """libswresample, mono int16; the same path for reference and recording."""
    if from_rate == to_rate:
        return pcm
    resampler = av.AudioResampler(format="s16", layout="mono", rate=to_rate)
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm).reshape(1, -1), "s16", "mono")
    frame.sample_rate = from_rate
    frames = list(resampler.resample(frame)) + list(resampler.resample(None))
    return np.concatenate([np.asarray(f.to_ndarray()).reshape(-1) for f in frames])


def decode_file(path: Path) -> tuple[Audio, int]:
    """(channels, n) int16-scaled samples at the file's own rate (48 kHz for Ogg Opus)."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        resampler = av.AudioResampler(format="s16p", layout=stream.layout, rate=rate)
        blocks = [f.to_ndarray() for fr in container.decode(stream) for f in resampler.resample(fr)]
        blocks += [f.to_ndarray() for f in resampler.resample(None)]
    return np.concatenate(blocks, axis=1).astype(np.float64), rate


def packet_bytes(path: Path, start: float, end: float) -> float:
    """The file's bytes for [start, end) s: its audio packets' sizes there, scaled by the
    container's overhead (file size over the sum of all packet sizes)."""
    inside = total = 0
    with av.open(str(path)) as container:
        for packet in container.demux(container.streams.audio[0]):
            if packet.size and packet.pts is not None and packet.time_base is not None:
                total += packet.size
                inside += packet.size if start <= packet.pts * packet.time_base < end else 0
    return inside * path.stat().st_size / max(total, 1)


def find_lag(channel: Audio, reference: Audio) -> int:
    """Where ``reference`` starts in ``channel`` (samples, >= 0), by cross-correlation."""
    size = 1 << (len(channel) + len(reference)).bit_length()
    spectrum = np.fft.rfft(channel, size) * np.conj(np.fft.rfft(reference, size))
    correlation = np.fft.irfft(spectrum, size)[: max(1, len(channel) - len(reference) // 2)]
    return int(np.argmax(correlation))


def score(reference: Audio, degraded: Audio, rate: int, mode: str) -> float:
    target = 8000 if mode == "nb" else 16000
    if rate != target:
        reference = resample(reference.astype(np.int16), rate, target).astype(np.float64)
        degraded = resample(degraded.astype(np.int16), rate, target).astype(np.float64)
    try:
        return float(pesq(target, reference, degraded, mode))
    except PesqError:  # no utterances found, too short: shown as "—"
        return math.nan


def level_db(x: Audio) -> float:
    return float(10 * np.log10(np.mean(x**2) + 1e-12))


def measure(run: Run, path: Path) -> None:
    audio, rate = decode_file(path)
    expected = round((run.recording["duration_s"] or 0) * rate)
    if abs(audio.shape[1] - expected) > rate // 50:
        run.notes.append(f"file decodes to {audio.shape[1]} samples, its duration says {expected}")
    if rate != run.codec.rate:
        audio = np.stack([resample(c.astype(np.int16), rate, run.codec.rate) for c in audio])
        audio, rate = audio.astype(np.float64), run.codec.rate
    lags = []
    for k, party in enumerate(run.parties):
        channel = audio[min(max(party.channel, 0), len(audio) - 1)]
        lags.append(find_lag(channel, run.sent[k]))
        party.lag_ms = 1000 * lags[k] / rate
        for name, reference in (("sent", run.sent[k]), ("orig", run.scenario.tracks[k] * 1.0)):
            # Each reference aligned on its own: "orig" is ahead of "sent" by the codec delay.
            lag = lags[k] if name == "sent" else find_lag(channel, reference)
            degraded = channel[lag : lag + len(reference)]
            degraded = np.pad(degraded, (0, len(reference) - len(degraded)))
            for mode in ("nb", "wb") if rate == 16000 else ("nb",):
                party.scores[f"{mode} {name}"] = score(reference, degraded, rate, mode)
    if any(run.scenario.alone) and min(p.channel for p in run.parties) >= 0:
        directions = []
        for k, intervals in enumerate(run.scenario.alone):
            talking, other = (audio[run.parties[j].channel] for j in (k, 1 - k))
            cut = np.concatenate([np.arange(a, b) + lags[k] for a, b in intervals])
            cut = cut[cut < audio.shape[1]]
            directions.append(level_db(talking[cut]) - level_db(other[cut]))
        run.isolation_db = min(directions)
    if run.scenario.name == "double":
        start, seconds = lags[0] / rate + PAD_S, run.scenario.speech_s
        run.active_kib_min = packet_bytes(path, start, start + seconds) / 1024 / (seconds / 60)
    if run.scenario.loss:
        run.notes.append(silence_fill_note(run))


def silence_fill_note(run: Run) -> str:
    """For scale: what filling the lost packets with silence scores, no recorder involved."""
    scores = []
    step = round(0.02 * run.codec.rate)  # 20 ms packets
    for k in range(2):
        filled = run.sent[k].copy()
        for i, offset, _ in run.packets[k]:
            if i in run.lost[k]:
                at = offset * run.codec.rate // run.codec.clock
                filled[at : at + step] = 0
        scores.append(score(run.sent[k], filled, run.codec.rate, "nb"))
    return (
        "for scale: the sent audio with the skipped packets' 20 ms set to silence (no "
        f"recorder involved) scores PESQ nb {scores[0]:.2f} / {scores[1]:.2f} against it"
    )


def read_result(run: Run, calls: list[dict[str, Any]]) -> None:
    """The call's entry in ``calls list --json``: recording, channel map, stream counts."""
    assert run.call is not None
    ids = {run.call.call_id}
    call = next(c for c in calls if ids & {s["sip_call_id"] for s in c["segments"]})
    run.recording = rec = next(r for r in call["recordings"] if r["kind"] == "segment")
    started = datetime.fromisoformat(call["segments"][0]["started_at"])
    for k, (aor, _) in enumerate((AGENT, CUSTOMER)):
        party = run.parties[k]
        where = [i for i, c in enumerate(rec["channel_map"]) if aor in c["participants"]]
        party.channel = where[0] if where else -1
        stream = next(s for s in call["streams"] if s["label"] == str(k + 1))
        party.recorder_lost = stream["lost"]
        first = datetime.fromisoformat(stream["first_packet_at"])
        party.arrival_ms = 1000 * (first - started).total_seconds()
        if stream["packets"] != (sent := len(run.packets[k]) - len(run.lost[k])):
            run.notes.append(f"stream {k + 1}: sent {sent} packets, stored {stream['packets']}")
    if run.parties[0].channel != 0:
        run.notes.append(f"the agent is not on the left: channel map {rec['channel_map']}")
    if rec["duration_s"] and abs(rec["duration_s"] - call["duration_s"]) > 0.05:
        run.notes.append(f"recording lasts {rec['duration_s']} s, its call {call['duration_s']}")


# -- the run ------------------------------------------------------------------------


def cli(*args: str) -> str:
    return subprocess.run([CLI, *args], check=True, capture_output=True, text=True).stdout


def wait_ready(runs: list[Run], data: Path, timeout: float = 180.0) -> list[dict[str, Any]]:
    ids = {r.call.call_id for r in runs if r.call}
    deadline = time.monotonic() + timeout
    while True:
        calls = json.loads(cli("calls", "list", "--json", "--data", str(data)))
        mine = [c for c in calls if ids & {s["sip_call_id"] for s in c["segments"]}]
        states = [r["state"] for c in mine for r in c["recordings"]]
        if len(states) >= len(ids) and all(s in ("ready", "failed") for s in states):
            return mine
        if time.monotonic() > deadline:
            raise RuntimeError(f"recordings not ready after {timeout:.0f} s: {states}")
        time.sleep(0.5)


async def run_calls(runs: list[Run], server: load.Server) -> None:
    client = await siprec_client.open_client(("127.0.0.1", server.sip_port))
    try:
        for index, run in enumerate(runs, 1):
            run.call = client.new_call(index, offer=run.codec.offer, parties=(AGENT, CUSTOMER))
        await asyncio.gather(*(client.invite(r.call) for r in runs if r.call))
        if failed := [r.name for r in runs if r.call is None or r.call.status != 200]:
            raise RuntimeError(f"calls not answered: {failed}\n{server.log_tail()}")
        await send_calls(runs, client)
    finally:
        if client.transport is not None:
            client.transport.close()


def measure_all(runs: list[Run], data: Path, workdir: Path) -> None:
    calls = wait_ready(runs, data)
    for run in runs:
        read_result(run, calls)
        if run.recording["state"] != "ready":
            run.notes.append(f"recording {run.recording['state']}: {run.recording.get('error')}")
            continue
        path = workdir / f"{run.recording['id']}.{run.recording['format']}"
        cli("recordings", "get", str(run.recording["id"]), "-o", str(path), "--data", str(data))
        measure(run, path)


def make_runs(codecs: list[str], sentences: int, workdir: Path) -> list[Run]:
    speech: dict[int, tuple[list[Pcm], list[Pcm]]] = {}
    for rate in sorted({CODECS[k].rate for k in codecs}):
        speech[rate] = (
            [say(formats.AGENT_VOICE, t, rate, workdir) for t in formats.AGENT[:sentences]],
            [say(formats.CALLER_VOICE, t, rate, workdir) for t in formats.CALLER[:sentences]],
        )
    runs: list[Run] = []
    for key in codecs:
        codec = CODECS[key]
        agent, customer = speech[codec.rate]
        scenarios = [turns(agent, customer, codec.rate), double(agent, customer, codec.rate)]
        if key == "pcmu":
            scenarios.append(replace(scenarios[0], name="turns, 5 % loss", loss=LOSS))
        runs += [prepare(key, codec, s, seed=len(runs) + i) for i, s in enumerate(scenarios)]
    return runs


# -- report -------------------------------------------------------------------------


def number(value: float | None, digits: int = 2) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def pair(run: Run, key: str) -> str:
    a, c = (p.scores.get(key, math.nan) for p in run.parties)
    return "—" if math.isnan(a) and math.isnan(c) else f"{number(a)} / {number(c)}"


def kib_per_min(run: Run) -> float:
    size, seconds = run.recording.get("size_bytes"), run.recording.get("duration_s")
    return size / 1024 / (seconds / 60) if size and seconds else math.nan


def isolation(value: float) -> str:
    return ">= 90" if value >= 90 else number(value, 0)


def tables(runs: list[Run]) -> list[str]:
    quality = [
        "| codec in | scenario | PESQ nb vs sent (A / C) | nb vs orig | wb vs sent | wb vs orig "
        "| isolation dB |",
        "| --- | --- | --- | --- | --- | --- | ---: |",
    ]
    files = [
        "| codec in | scenario | file | s | KiB/min | KiB/min both talking | left = agent "
        "| lag A / C ms | skew ms | lag - 1st arrival A / C ms | lost: skipped / counted |",
        "| --- | --- | --- | ---: | ---: | ---: | --- | --- | ---: | --- | --- |",
    ]
    for r in runs:
        rec, (a, c) = r.recording, r.parties
        scores = " | ".join(pair(r, f"{m} {ref}") for m in ("nb", "wb") for ref in ("sent", "orig"))
        quality.append(
            f"| {r.codec.label} | {r.scenario.name} | {scores} | {isolation(r.isolation_db)} |"
        )
        files.append(
            f"| {r.codec.label} | {r.scenario.name} | {rec.get('format')}/{rec.get('codec')} "
            f"{rec.get('sample_rate')} Hz | {number(rec.get('duration_s'), 1)} "
            f"| {number(kib_per_min(r), 0)} | {number(r.active_kib_min, 0)} "
            f"| {'yes' if (a.channel, c.channel) == (0, 1) else 'NO'} "
            f"| {number(a.lag_ms, 1)} / {number(c.lag_ms, 1)} | {number(a.lag_ms - c.lag_ms, 1)} "
            f"| {number(a.lag_ms - a.arrival_ms, 1)} / {number(c.lag_ms - c.arrival_ms, 1)} "
            f"| {len(r.lost[0])} / {a.recorder_lost}, {len(r.lost[1])} / {c.recorder_lost} |"
        )
    return ["\n".join(quality), "\n".join(files)]


def targets(runs: list[Run], checked: bool) -> str:
    found = {r.scenario.name: r for r in runs if r.key == "pcmu"}
    nan = math.nan

    def worst(name: str) -> float:
        run = found.get(name)
        return min(p.scores.get("nb sent", nan) for p in run.parties) if run else nan

    turns_run, double_run = found.get("turns"), found.get("double")
    rows = [
        ("PESQ per channel, single talk (worse channel)", worst("turns"), 4.0, 1, 2),
        ("PESQ per channel, double talk", worst("double"), 4.0, 1, 2),
        ("PESQ per channel, 5 % random loss", worst("turns, 5 % loss"), 3.5, 1, 2),
        ("channel isolation, dB", turns_run.isolation_db if turns_run else nan, 30.0, 1, 0),
        ("KiB/min, both parties fully active", double_run.active_kib_min if double_run else nan,
         160.0, -1, 0),
        ("KiB/min, turn-taking call (reported only)", kib_per_min(turns_run) if turns_run else nan,
         nan, 0, 0),
    ]  # fmt: skip
    lines = [
        "| target (G.711 in, default format out) | measured | target | met |",
        "| --- | ---: | --- | --- |",
    ]
    for label, value, limit, sign, digits in rows:
        wanted = "—" if not sign else f"{'>=' if sign > 0 else '<='} {limit:.{min(digits, 1)}f}"
        met = "—" if not sign or math.isnan(value) else "n/a: settings changed"
        if checked and met != "—":
            met = "yes" if sign * (value - limit) >= 0 else "**NO**"
        shown = isolation(value) if "isolation" in label else number(value, digits)
        lines.append(f"| {label} | {shown} | {wanted} | {met} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--codecs", default=",".join(CODECS), help=f"of {', '.join(CODECS)}")
    parser.add_argument("--format", choices=("ogg", "mp3", "wav"), help="recording.format")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--sentences", type=int, default=3, help="per party, 1-6")
    parser.add_argument("--rtp-ports", default="45000-45199", help="the server's RTP range")
    parser.add_argument("--keep-data", action="store_true", help="keep the data directory")
    args = parser.parse_args(argv)
    args.codecs = [c.strip() for c in args.codecs.split(",") if c.strip()]
    if unknown := set(args.codecs) - set(CODECS):
        parser.error(f"unknown codecs: {', '.join(sorted(unknown))}")
    if not 1 <= args.sentences <= len(formats.AGENT):
        parser.error("--sentences must be 1 to 6")
    if any("=" not in item for item in args.set):
        parser.error("--set takes KEY=VALUE")
    low, _, high = args.rtp_ports.partition("-")
    args.rtp = (int(low), int(high))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = " ".join(["python bench/quality.py", *(sys.argv[1:] if argv is None else argv)])
    workdir = Path(tempfile.mkdtemp(prefix="callvault-quality-"))
    (data := workdir / "data").mkdir()
    began = time.monotonic()
    server = load.Server(data, args.rtp)
    changes = [f"recording.format={args.format}"] * bool(args.format) + args.set
    try:
        runs = make_runs(args.codecs, args.sentences, workdir)
        print(f"{len(runs)} calls prepared; starting the server", file=sys.stderr, flush=True)
        server.start()
        if changes:
            pairs = [part for item in changes for part in item.split("=", 1)]
            cli("settings", "set", *pairs, "--data", str(data))
        settings = [
            line.split("  [")[0]
            for line in cli("settings", "list", "--data", str(data)).splitlines()
            if line.startswith("recording.") and "template" not in line
        ]
        asyncio.run(run_calls(runs, server))
        print("calls ended; waiting for the recordings", file=sys.stderr, flush=True)
        measure_all(runs, data, workdir)
    finally:
        server.stop(grace=5.0)
        if args.keep_data:
            print(f"data kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    lines = [
        f"# callvault end-to-end quality, {time.strftime('%Y-%m-%d %H:%M %Z')}",
        "",
        f"Machine: {report.machine()}. Command: `{command}` ({time.monotonic() - began:.0f} s).",
        f"Settings: {'; '.join(settings)}.",
        f"Speech: espeak-ng, {args.sentences} sentences per party; A = agent ({AGENT[0]}, "
        f"stream 1), C = customer ({CUSTOMER[0]}, stream 2).",
        "",
        *"\n\n".join([*tables(runs), targets(runs, checked=not changes)]).split("\n"),
    ]
    if notes := [f"- {r.name}: {note}" for r in runs for note in r.notes]:
        lines += ["", *notes]
    text = "\n".join(lines) + "\n"
    print(text)
    load.OUT.mkdir(parents=True, exist_ok=True)
    out = load.OUT / f"quality-{time.strftime('%Y%m%d-%H%M%S')}.md"
    out.write_text(text)
    print(f"written to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
