"""The finalize job's speed: a long two-party G.711 call from capture file to recording.

A benchmark, not a test: it prints markdown tables (and saves them in bench/out/).

Material: two parties from espeak-ng (``formats.make_material``: six sentences each,
8 kHz), looped to ``--minutes`` of call in two variants: "turns" (they take turns with
pauses and the odd interruption, like a real call) and "active" (both talk all the
time). Each is G.711 µ-law coded and written as the recorder's capture would be: one
PCMU packet per stream every 20 ms (about 1 ms of arrival jitter), 360,000 packets for
an hour, with the recorder's own ``PcapWriter``. The segment rows come from a corpus
INVITE (``cisco_cube_2streams_gtd.sip``, two streams, PCMU) in a fresh SQLite database,
made as tests/recording/test_finalize.py makes them; each stream's packets go to the
port its stream row holds.

Measured, in this one process pinned to one core (``os.sched_setaffinity``):

* ``finalize_recording`` itself, for each format (runtime settings saved before each
  run, ``force=True`` to redo the recording): wall and CPU seconds (``process_time``,
  every thread of the process) and call seconds per CPU second ("x real time").
* a per-stage breakdown for the default format: the job's own functions called in the
  job's order (``finalize._work`` / ``render_plan`` / ``artifact.write_artifact``):
  ``read_capture``; ``decode_stream`` per stream (placement, decoding, rendering);
  ``mix`` per channel; ``party_talk`` (talk intervals); ``encode_file`` (encoder and
  SHA-256); ``waveform_peaks`` and the silence ratio. "the rest" is the job's total
  minus these: database claim and commit, settings, the file's rename.
  ``--profile`` adds cProfile's top functions of one default-format run.

    .venv/bin/python bench/finalize_speed.py [--minutes 60] [--formats default,wav,mp3,vorbis]
        [--variants turns,active] [--set recording.opus_complexity=1 ...] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import io
import multiprocessing
import os
import pstats
import shutil
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
from sqlalchemy import select

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT), str(ROOT / "src")]

import formats  # noqa: E402  (espeak-ng material)
import report  # noqa: E402
from tests.recording.helpers import new_segment  # noqa: E402

from callvault.config import Settings, load_settings  # noqa: E402
from callvault.db import Database  # noqa: E402
from callvault.db.models import Recording, Stream  # noqa: E402
from callvault.media.analysis import waveform_peaks  # noqa: E402
from callvault.media.encode import encode_file  # noqa: E402
from callvault.media.g711 import encode_ulaw  # noqa: E402
from callvault.media.session import decode_stream, mix, read_capture, stream_rate  # noqa: E402
from callvault.recording.artifact import PEAKS_PER_SECOND, _silence_ratio, party_talk  # noqa: E402
from callvault.recording.finalize import finalize_recording, stream_sources  # noqa: E402
from callvault.recording.policy import policy_from  # noqa: E402
from callvault.recording.store import create_segment, end_segment  # noqa: E402
from callvault.rtp.pcap import PcapWriter  # noqa: E402
from callvault.runtime_settings import effective_settings, set_settings  # noqa: E402

Pcm = npt.NDArray[np.int16]
T = TypeVar("T")

CORPUS_INVITE = "cisco_cube_2streams_gtd.sip"
START = 1_700_000_000.0
SBC = ("192.0.2.10", 7000)
RECORDER = "127.0.0.1"
TARGET = 250.0  # x real time on one core, default format (issue 3)

#: Runtime settings per format row; every row sets both keys, so rows do not leak.
FORMATS: dict[str, dict[str, str]] = {
    "default": {"recording.format": "ogg", "recording.codec": "auto"},
    "wav": {"recording.format": "wav", "recording.codec": "pcm"},
    "mp3": {"recording.format": "mp3", "recording.codec": "mp3"},
    "vorbis": {"recording.format": "ogg", "recording.codec": "vorbis"},
}


# -- the call ---------------------------------------------------------------------------


def tracks(variant: str, minutes: float, workdir: Path) -> Pcm:
    """(2, n) int16 at 8 kHz: the material looped to ``minutes``."""
    material = formats.make_material(workdir)
    loop = material.turns if variant == "turns" else material.double
    n = round(minutes * 60 * formats.RATE)
    reps = -(-n // loop.shape[1])
    return np.ascontiguousarray(np.tile(loop, reps)[:, :n])


def write_capture(path: Path, pcm: Pcm, ports: list[int], t0: float) -> int:
    """One PCMU packet per stream per 20 ms, in arrival order; returns the packet count."""
    per = 160
    count = int(pcm.shape[1]) // per
    rng = np.random.default_rng(7)
    arrivals = t0 + np.arange(count) * 0.02 + rng.uniform(0, 0.001, (len(ports), count))
    order = np.argsort(arrivals, axis=None, kind="stable")
    coded = [encode_ulaw(pcm[k, : count * per]) for k in range(len(ports))]
    header = struct.Struct("!BBHII")
    with path.open("wb") as fileobj:
        writer = PcapWriter(fileobj)
        writer.write_header()
        for flat in order.tolist():
            k, i = divmod(flat, count)
            timestamp = (50_000 * (k + 1) + i * per) & 0xFFFFFFFF
            data = header.pack(0x80, (i == 0) << 7, (1000 + i) & 0xFFFF, timestamp, 0x5EC0 + k)
            writer.write_packet(
                float(arrivals[k, i]),
                SBC,
                (RECORDER, ports[k]),
                data + coded[k][i * per : (i + 1) * per],
            )
    return count * len(ports)


def make_session(data_dir: Path, pcm: Pcm) -> tuple[Database, int, float]:
    """Database, segment rows and capture; (database, recording id, capture seconds)."""
    database = Database.for_data_dir(data_dir)
    database.migrate()
    seconds = pcm.shape[1] / formats.RATE
    new = new_segment(CORPUS_INVITE, started_at=START, first_port=30000)
    ids = database.write(lambda s: create_segment(s, new))
    ports = database.read(
        lambda s: [
            st.local_port or 0
            for st in s.scalars(
                select(Stream).where(Stream.segment_id == ids.segment_id).order_by(Stream.label)
            )
        ]
    )
    capture = data_dir / new.capture_path
    capture.parent.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    packets = write_capture(capture, pcm, ports, START + 0.2)
    print(
        f"  capture: {packets:,} packets, {capture.stat().st_size / 2**20:.0f} MiB, written in "
        f"{time.perf_counter() - began:.1f} s",
        file=sys.stderr,
        flush=True,
    )
    recording_id = database.write(
        lambda s: end_segment(s, ids.segment_id, "bye", START + 0.2 + seconds + 0.1, [])
    )
    assert recording_id is not None
    return database, recording_id, seconds + 0.3


# -- timing -----------------------------------------------------------------------------


@dataclasses.dataclass
class Timing:
    wall: float = 0.0
    cpu: float = 0.0


def timed(out: Timing, fn: Callable[[], T]) -> T:
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    out.wall += time.perf_counter() - wall
    out.cpu += time.process_time() - cpu
    return result


@dataclasses.dataclass
class FormatRow:
    variant: str
    label: str
    state: str
    timing: Timing
    seconds: float
    size: int


def configure(database: Database, base: Settings, values: dict[str, str]) -> None:
    database.write(lambda s: set_settings(s, values, updated_by="bench", base=base))


@dataclasses.dataclass
class JobResult:
    row: FormatRow
    stages: dict[str, Timing] | None = None
    profile: str | None = None


def job(
    data_dir: Path,
    recording_id: int,
    label: str,
    values: dict[str, str],
    detail: bool,
    with_profile: bool,
    core: int,
) -> JobResult:
    """In a fresh process pinned to ``core``: save the settings, run the job, time it."""
    os.sched_setaffinity(0, {core})
    database = Database.for_data_dir(data_dir)
    base = load_settings({"data_dir": str(data_dir)}, environ={})
    configure(database, base, values)
    timing = Timing()
    state = timed(
        timing,
        lambda: finalize_recording(database, data_dir, recording_id, settings=base, force=True),
    )
    rec = database.read(lambda s: s.get(Recording, recording_id))
    assert rec is not None
    row = FormatRow("", label, state, timing, rec.duration_s or 0.0, rec.size_bytes or 0)
    result = JobResult(row)
    if detail:
        result.stages = stages(database, data_dir, recording_id, base)
    if with_profile:
        result.profile = profile(database, data_dir, recording_id, base)
    return result


def _child(conn: Connection, *args: Any) -> None:
    conn.send(job(*args))
    conn.close()


def run_job(*args: Any) -> JobResult:
    """``job`` in a spawned process; a crash (libsndfile's SIGSEGV, say) becomes a row."""
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(send, *args))
    process.start()
    send.close()
    try:
        result: JobResult = receive.recv()
    except EOFError:
        result = JobResult(FormatRow("", args[2], "crashed", Timing(), 0.0, 0))
    process.join()
    if process.exitcode:
        code = process.exitcode
        result.row.state = f"crashed ({f'signal {-code}' if code < 0 else f'exit {code}'})"
    return result


def stages(
    database: Database, data_dir: Path, recording_id: int, base: Settings
) -> dict[str, Timing]:
    """The job's work, function by function, in the job's order (see finalize._work)."""
    out: dict[str, Timing] = {}

    def stage(name: str, fn: Callable[[], T]) -> T:
        return timed(out.setdefault(name, Timing()), fn)

    def load(s: Any) -> tuple[Any, ...]:
        rec = s.get(Recording, recording_id)
        segment = rec.segment
        policy = policy_from(effective_settings(s, base))
        return (
            stream_sources(segment.streams),
            data_dir / segment.capture_path,
            segment.started_at.timestamp(),
            segment.ended_at.timestamp(),
            rec.channel_map,
            policy.output_format,
        )

    sources, capture_path, start, end, channel_map, fmt = database.read(load)
    wanted = {s.local_port for s in sources if s.local_port}
    capture = stage("read_capture", lambda: read_capture(capture_path, wanted))
    rate = max((stream_rate(s) for s in sources), default=8000)
    decoded = {}
    for n, source in enumerate(sources, 1):
        packets = capture.packets.get(source.local_port, [])
        decoded[source.key] = stage(
            f"decode_stream (stream {n}: place, decode, render)",
            lambda: decode_stream(source, packets, sample_rate=rate, start=start, end=end),  # noqa: B023
        )
    total = max(0, round((end - start) * rate))
    channels, talk = [], []
    for index, channel in enumerate(channel_map):
        streams = [decoded[i].pcm for i in channel["stream_ids"]]
        channels.append(stage("mix (per channel)", lambda: mix(streams, total)))  # noqa: B023
        talk.append(
            stage(
                "party_talk (talk intervals)",
                lambda: party_talk(channel["labels"][0], index, channels[-1], rate),  # noqa: B023
            )
        )
    pcm = stage("np.stack (channels to one array)", lambda: np.stack(channels))
    target = data_dir / "stages.out"
    stage("encode_file (encoder, SHA-256)", lambda: encode_file(target, pcm, rate, fmt))
    stage("waveform_peaks", lambda: waveform_peaks(pcm, rate, PEAKS_PER_SECOND))
    stage("silence ratio", lambda: [_silence_ratio(c, rate) for c in pcm])
    target.unlink(missing_ok=True)
    return out


def profile(database: Database, data_dir: Path, recording_id: int, base: Settings) -> str:
    profiler = cProfile.Profile()
    profiler.runcall(
        finalize_recording, database, data_dir, recording_id, settings=base, force=True
    )
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(15)
    return text.getvalue()


# -- report -----------------------------------------------------------------------------


def format_table(rows: list[FormatRow], call_seconds: float) -> str:
    lines = [
        "| call | format | state | wall s | CPU s | x real time (CPU) | x real time (wall) "
        "| KiB/min | duration s |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        if not r.timing.cpu:
            lines.append(f"| {r.variant} | {r.label} | {r.state} |" + " — |" * 6)
            continue
        lines.append(
            f"| {r.variant} | {r.label} | {r.state} | {r.timing.wall:.1f} | {r.timing.cpu:.1f} "
            f"| {call_seconds / r.timing.cpu:.0f} | {call_seconds / r.timing.wall:.0f} "
            f"| {r.size / 1024 / (r.seconds / 60):.0f} | {r.seconds:.1f} |"
        )
    return "\n".join(lines)


def stage_table(variant: str, parts: dict[str, Timing], job: Timing, call_seconds: float) -> str:
    lines = [
        f"| stage ({variant}, default format) | CPU s | share of job | x real time alone |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, t in parts.items():
        alone = f"{call_seconds / t.cpu:.0f}" if t.cpu >= 0.005 else "—"  # below the clock's grain
        lines.append(f"| {name} | {t.cpu:.2f} | {100 * t.cpu / job.cpu:.0f} % | {alone} |")
    rest = job.cpu - sum(t.cpu for t in parts.values())
    lines.append(
        f"| the rest (claim, commit, rename) | {rest:.2f} | {100 * rest / job.cpu:.0f} % | — |"
    )
    lines.append(
        f"| **finalize_recording** | {job.cpu:.2f} | 100 % | {call_seconds / job.cpu:.0f} |"
    )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="length of the call")
    parser.add_argument("--formats", default=",".join(FORMATS), help=f"of {', '.join(FORMATS)}")
    parser.add_argument("--variants", default="turns,active", help="turns, active")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="one more row: default+"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile one default run")
    parser.add_argument("--keep-data", action="store_true", help="keep the data directories")
    args = parser.parse_args(argv)
    args.formats = [f for f in args.formats.split(",") if f]
    args.variants = [v for v in args.variants.split(",") if v]
    if bad := (set(args.formats) - set(FORMATS)) | (set(args.variants) - {"turns", "active"}):
        parser.error(f"unknown: {', '.join(sorted(bad))}")
    if any("=" not in item for item in args.set) or args.minutes <= 0:
        parser.error("--set takes KEY=VALUE; --minutes must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = " ".join(
        ["python bench/finalize_speed.py", *(sys.argv[1:] if argv is None else argv)]
    )
    # One core, as the requirement is stated: each job's process and all its threads.
    core = min(os.sched_getaffinity(0))
    rows: list[FormatRow] = []
    sections: list[str] = []
    call_seconds = 0.0
    runs = [(name, FORMATS[name]) for name in args.formats]
    if args.set:
        extra = dict(item.split("=", 1) for item in args.set)
        runs.append((" ".join(args.set), {**FORMATS["default"], **extra}))
    for variant in args.variants:
        workdir = Path(tempfile.mkdtemp(prefix=f"callvault-finalize-{variant}-"))
        try:
            print(f"{variant}: building a {args.minutes:g} min call", file=sys.stderr, flush=True)
            database, recording_id, call_seconds = make_session(
                workdir, tracks(variant, args.minutes, workdir)
            )
            database.dispose()
            for label, values in runs:
                detail = label == "default"
                profiled = detail and args.profile
                result = run_job(workdir, recording_id, label, values, detail, profiled, core)
                result.row.variant = variant
                rows.append(result.row)
                line = format_table([result.row], call_seconds).splitlines()[-1]
                print(line, file=sys.stderr, flush=True)
                if result.stages is not None:
                    timing = result.row.timing
                    sections.append(stage_table(variant, result.stages, timing, call_seconds))
                if result.profile is not None:
                    top = result.profile.strip()
                    sections.append(f"cProfile, {variant}, default format:\n\n```\n{top}\n```")
        finally:
            if args.keep_data:
                print(f"data kept in {workdir}", file=sys.stderr)
            else:
                shutil.rmtree(workdir, ignore_errors=True)
    text = "\n".join(
        [
            f"# callvault finalize job speed, {time.strftime('%Y-%m-%d %H:%M %Z')}",
            "",
            f"Machine: {report.machine()}; pinned to core {core}. Command: `{command}`.",
            f"Call: {call_seconds / 60:.1f} min, two PCMU streams ({CORPUS_INVITE}). "
            f"Target (issue 3): >= {TARGET:.0f}x real time on one core, default format.",
            "",
            format_table(rows, call_seconds),
            "",
            "\n\n".join(sections),
        ]
    )
    print(text)
    out = BENCH / "out"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"finalize-speed-{time.strftime('%Y%m%d-%H%M%S')}.md"
    path.write_text(text + "\n")
    print(f"written to {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
