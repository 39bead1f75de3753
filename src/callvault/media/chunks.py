"""Decode one run of a stream and lay it on the output PCM, following its clock.

Job: the rendering half of ``timeline``: given a run's frames (sorted by timestamp),
its clock line from ``drift`` and decoder factories, write its audio into a
``Canvas``. No packets, no I/O; the public entry point is ``timeline.render_stream``.

Theory of operation.

Decoding. One fresh decoder per (run, payload type), fed in timestamp order, so stateful
codecs (G.722, Opus, AMR) see their own stream. A payload the decoder rejects with
``ValueError`` (``decoders.UndecodablePayload``) is counted and left silent. Stateless
sample-per-byte decoders (G.711, or any declaring ``samples_per_byte``) decode a whole
batch of joined payloads in one call. A decoder of another sample rate than the output
is converted simply: the mean of each k samples down by an integer k, else linear
interpolation; proper resampling of whole streams happens later in the pipeline, so
render at the stream's highest decoder rate.

Placing. Frames whose timestamps follow on exactly form a *chunk*, laid down sample by
sample: audio that was contiguous when sent stays contiguous. Each chunk starts at its
ideal place on the run's line, rounded to a sample, so the drift is corrected in the
gaps (loss, silence suppression), where moving the next chunk by a sample or two is not
heard. A chunk too long for the drift (no gap for ``MAX_CLOCK_ERROR / drift``: 37 s at
80 ppm) is cut before its error passes ``MAX_CLOCK_ERROR``: in the middle of the
quietest frame of the stretch before that point, a few samples (at most twice the limit,
6 ms) are dropped or played twice, turning the error +e into -e: at 80 ppm the cuts come
56 to 75 s apart, and both sides of each seam are quiet. Resampling the run instead
would cost a filter pass over every sample (or dull it periodically, with linear
interpolation) to move audio by milliseconds; a few samples inside the quietest 20 ms of
half a minute are not heard.

Overlaps. Within a run a later chunk overwrites an earlier one (a sender repeating
timestamps). Where a run overlaps audio of an earlier run (two sources at once, or a
few milliseconds of two fits meeting) the two are summed with clipping, so neither is
lost. Work memory is the output PCM plus one batch of ``BATCH`` frames.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from itertools import pairwise
from typing import Protocol

import numpy as np
import numpy.typing as npt

from callvault.media.drift import ClockFit
from callvault.media.g711 import AlawDecoder, UlawDecoder

__all__ = ["BATCH", "MAX_CLOCK_ERROR", "Canvas", "Decoder", "RunLayer"]

Pcm = npt.NDArray[np.int16]
Ints = npt.NDArray[np.int64]
Indices = npt.NDArray[np.intp]
SampleRange = tuple[int, int]

#: Frames decoded at a time.
BATCH = 4096
#: Largest drift error let build up inside a chunk before it is cut (seconds).
MAX_CLOCK_ERROR = 0.003


class Decoder(Protocol):
    """Turns one RTP payload into mono int16 samples at ``sample_rate``."""

    @property
    def sample_rate(self) -> int: ...

    def decode(self, payload: bytes) -> Pcm: ...


class Canvas:
    """The output PCM. Writes of one run overwrite; over earlier runs' audio they mix."""

    __slots__ = ("mixed_end", "pcm", "ranges", "run_end")

    def __init__(self, total: int) -> None:
        self.pcm: Pcm = np.zeros(total, dtype=np.int16)
        self.ranges: list[SampleRange] = []
        self.mixed_end = 0  # end of the audio of the runs before this one
        self.run_end = 0

    def next_run(self) -> None:
        self.mixed_end = max(self.mixed_end, self.run_end)

    def write(self, position: int, samples: Pcm) -> None:
        a, b = max(position, 0), min(position + len(samples), len(self.pcm))
        if b <= a:
            return
        source = samples[a - position : b - position]
        mix = min(b, self.mixed_end)
        if a < mix:
            summed = self.pcm[a:mix].astype(np.int32) + source[: mix - a]
            self.pcm[a:mix] = np.clip(summed, -32768, 32767)
            self.pcm[mix:b] = source[mix - a :]
        else:
            self.pcm[a:b] = source
        self.ranges.append((a, b))
        self.run_end = max(self.run_end, b)


class RunLayer:
    """Decodes one run in batches and lays its chunks on the canvas.

    Positions are output samples. A chunk's sample ``j`` ideally lands at
    ``c0 + (chunk_u / clock_rate + j) * (1 + drift)``; the current *piece* puts it at
    ``base + j - j0``, so the error ``base + j - j0 - ideal`` changes by ``-drift`` per
    sample. ``chunk_u`` and ``next_u`` count timestamps times the output rate, which
    makes "this frame follows on exactly" an integer test.
    """

    def __init__(
        self,
        timestamps: Ints,
        payload_types: Ints,
        payloads: tuple[bytes, ...],
        clock_rate: int,
        clock: ClockFit,
        decoders: Mapping[int, Callable[[], Decoder]],
        *,
        rate: int,
        start: float,
        canvas: Canvas,
    ) -> None:
        self.timestamps, self.payload_types, self.payloads = timestamps, payload_types, payloads
        self.clock_rate, self.factories, self.rate, self.canvas = clock_rate, decoders, rate, canvas
        self.instances: dict[int, Decoder] = {}
        self.c0 = (clock.anchor - start) * rate
        self.drift = clock.drift
        self.scale = 1.0 + clock.drift
        self.limit = MAX_CLOCK_ERROR * rate
        self.next_u: int | None = None
        self.chunk_u = self.written = self.j0 = self.base = 0
        self.used = self.undecodable = 0

    def render(self) -> SampleRange | None:
        """Lay the run down; the output range its frames touched, if any."""
        clock, rate, total = self.clock_rate, self.rate, len(self.canvas.pcm)
        # Frames whose ideal place is over a second outside the output are not decoded.
        per_tick = rate * self.scale / clock
        lo = int(np.searchsorted(self.timestamps, (-rate - self.c0) / per_tick - clock))
        hi = int(np.searchsorted(self.timestamps, (total + rate - self.c0) / per_tick, "right"))
        first, last = total, 0
        for b0 in range(lo, hi, BATCH):
            audio, lens, frames = self._decode(b0, min(b0 + BATCH, hi))
            if not len(frames):
                continue
            u = self.timestamps[frames] * rate
            follows = np.ones(len(u), dtype=bool)
            follows[1:] = np.abs(u[1:] - u[:-1] - lens[:-1] * clock) < clock
            follows[0] = self.next_u is not None and abs(int(u[0]) - self.next_u) < clock
            self.next_u = int(u[-1] + lens[-1] * clock)
            offsets = np.concatenate(([0], np.cumsum(lens)))
            fresh = np.flatnonzero(~follows).tolist()
            bounds = [0, *fresh, len(frames)] if fresh[:1] != [0] else [*fresh, len(frames)]
            for a, b in pairwise(bounds):
                if not follows[a]:
                    self._new_chunk(int(u[a]))
                js = self.written + offsets[a:b] - offsets[a]
                starts = self._lay(audio[offsets[a] : offsets[b]], js, lens[a:b])
                self.written += int(offsets[b] - offsets[a])
                ends = starts + lens[a:b]
                touched = (starts < total) & (ends > 0)
                if touched.any():
                    self.used += int(touched.sum())
                    first = min(first, max(int(starts[touched].min()), 0))
                    last = max(last, min(int(ends[touched].max()), total))
        return (first, last) if last > first else None

    def _new_chunk(self, chunk_u: int) -> None:
        self.chunk_u, self.written, self.j0 = chunk_u, 0, 0
        self.base = round(self.c0 + chunk_u / self.clock_rate * self.scale)

    def _error(self, j: float) -> float:
        ideal = self.c0 + (self.chunk_u / self.clock_rate + j) * self.scale
        return self.base + j - self.j0 - ideal

    def _lay(self, audio: Pcm, js: Ints, lens: Ints) -> Ints:
        """Write frames of one chunk (starting at chunk samples ``js``), cutting where
        the drift error would pass the limit; return where each frame landed."""
        begin, stop = int(js[0]), int(js[0]) + len(audio)
        cursor = begin
        pieces = [(begin, self.j0, self.base)]
        while self.drift:
            edge = self.limit if self.drift < 0 else -self.limit
            deadline = (self._error(0) - edge) / self.drift  # where |error| reaches limit
            if deadline >= stop:
                break
            # Candidates: frames where |error| is past half the limit, so that every
            # cut moves at least a limit's worth and cuts stay rare even in silence.
            reach = self.limit / abs(self.drift) / 2
            lo = int(np.searchsorted(js, max(cursor, deadline - reach)))
            hi = max(int(np.searchsorted(js, deadline, "right")), lo + 1)
            if lo >= len(js):
                break  # no frame starts before the chunk goes on in the next batch
            # The quietest frame; of equally quiet ones (digital silence) the last.
            loudness = _loudness(audio, js[lo:hi] - begin, lens[lo:hi])
            q_index = hi - 1 - int(np.argmin(loudness[::-1]))
            # Cut in the middle of the quiet frame, so both sides of the seam are quiet,
            # and mirror the error (+e to -e): the next cut is then twice as far away.
            length = int(lens[q_index])
            cut = int(js[q_index]) + length // 2
            error = self._error(cut)
            room = max(length // 2 - 1, 1)
            shift = max(-room, min(round(2 * error) or (1 if error > 0 else -1), room))
            placed = self.base + cut - self.j0
            self.canvas.write(self.base + cursor - self.j0, audio[cursor - begin : cut - begin])
            if shift > 0:  # placed late: skip samples
                self.j0, self.base, cursor = cut + shift, placed, cut + shift
            else:  # placed early: play the samples before the cut twice
                self.canvas.write(placed, audio[cut - begin + shift : cut - begin])
                self.j0, self.base, cursor = cut, placed - shift, cut
            pieces.append((cursor, self.j0, self.base))
        self.canvas.write(self.base + cursor - self.j0, audio[cursor - begin :])
        table = np.array(pieces, dtype=np.int64)
        which = np.searchsorted(table[:, 0], js, "right") - 1
        landed: Ints = table[which, 2] + js - table[which, 1]
        return landed

    def _decoder(self, payload_type: int) -> Decoder:
        decoder = self.instances.get(payload_type)
        if decoder is None:
            factory = self.factories.get(payload_type)
            if factory is None:
                raise KeyError(f"no decoder for payload type {payload_type}")
            decoder = self.instances[payload_type] = factory()
        return decoder

    def _decode(self, lo: int, hi: int) -> tuple[Pcm, Ints, Indices]:
        """Frames ``lo:hi`` at the output rate: samples, lengths, which frames."""
        pts = self.payload_types[lo:hi]
        bounds = [0, *(np.flatnonzero(np.diff(pts)) + 1).tolist(), hi - lo]
        parts: list[tuple[Pcm, Ints, Indices]] = []
        for a, b in pairwise(bounds):
            decoder = self._decoder(int(pts[a]))
            audio, lens, ok, bad = _decode_block(decoder, self.payloads[lo + a : lo + b])
            self.undecodable += bad
            audio, lens = _convert(audio, lens, decoder.sample_rate, self.rate)
            parts.append((audio, lens, ok + lo + a))
        if len(parts) == 1:
            return parts[0]
        return (
            np.concatenate([p[0] for p in parts]),
            np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]),
        )


def _loudness(audio: Pcm, starts: Ints, lens: Ints) -> npt.NDArray[np.float64]:
    """Mean absolute sample value of each frame."""
    lo, hi = int(starts[0]), int(starts[-1] + lens[-1])
    sums = np.add.reduceat(np.abs(audio[lo:hi].astype(np.int32)), starts - lo)
    return np.asarray(sums / np.maximum(lens, 1), dtype=np.float64)


def _samples_per_byte(decoder: Decoder) -> int | None:
    """Stateless decoders whose joined payloads decode in one call."""
    if isinstance(decoder, UlawDecoder | AlawDecoder):
        return 1
    declared = getattr(decoder, "samples_per_byte", None)
    return declared if isinstance(declared, int) else None


def _decode_block(decoder: Decoder, payloads: tuple[bytes, ...]) -> tuple[Pcm, Ints, Indices, int]:
    """Decode payloads in order: samples, per-frame lengths, which frames, failures."""
    per_byte = _samples_per_byte(decoder)
    if per_byte:
        lens = np.fromiter(map(len, payloads), np.int64, len(payloads)) * per_byte
        try:
            audio = decoder.decode(b"".join(payloads))
        except ValueError:
            pass  # find the bad frames one by one below
        else:
            if len(audio) == int(lens.sum()):
                ok = np.flatnonzero(lens)
                return audio, lens[ok], ok, 0
    decoded: list[Pcm] = []
    kept: list[int] = []
    bad = 0
    for i, payload in enumerate(payloads):
        try:
            samples = decoder.decode(payload)
        except ValueError:  # decoders.UndecodablePayload
            bad += 1
            continue
        if len(samples):
            decoded.append(samples)
            kept.append(i)
    if not decoded:
        return np.zeros(0, np.int16), np.zeros(0, np.int64), np.zeros(0, np.intp), bad
    lens = np.array([len(s) for s in decoded], dtype=np.int64)
    return np.concatenate(decoded), lens, np.array(kept, dtype=np.intp), bad


def _convert(audio: Pcm, lens: Ints, source: int, target: int) -> tuple[Pcm, Ints]:
    """Simple rate change: mean of k samples down by an integer k, else interpolation."""
    if source == target or not len(audio):
        return audio, lens
    ends = (np.cumsum(lens) * target + source // 2) // source
    new_lens = np.diff(ends, prepend=0)
    factor = source // target
    if source % target == 0 and not np.any(lens % factor):
        out = audio.reshape(-1, factor).mean(axis=1)
    else:
        grid = np.arange(int(ends[-1])) * (source / target)
        out = np.interp(grid, np.arange(len(audio)), audio)
    return np.rint(out).astype(np.int16), new_lens
