"""How one sender's RTP clock maps onto the recorder's wall clock.

Job: given the packets of one *run* (one SSRC, one clock rate, timestamps from one
continuous sender clock) as media time (``timestamp / clock_rate``, seconds since the
run's first timestamp) and arrival time, estimate the line

    wall = anchor + media * (1 + drift)

that says when each sample was sent, in the recorder's clock. Boundaries: numbers in,
numbers out; no packets, no decoding, no I/O.

Theory of operation. The offset ``arrival - media`` of a packet is the line plus that
packet's network delay, and the delay is never below the path's minimum. So the line is
the *lower envelope* of the offsets, not their average: the packets that crossed the
network fastest carry the clock, queueing and jitter only ever push offsets up.

* Drift (the sender's crystal against the recorder's, tens of ppm on real SBCs and
  phones): the run is cut into windows of ``WINDOW`` seconds of media time and the
  minimum offset of each window is taken. The slope is the *median* of the slopes
  between window minima ``lag`` windows apart (``lag`` is an eighth of the windows, so
  the pairs span long baselines and each minimum's noise is divided by minutes, not
  seconds). A step in the network delay (a path change adds 200 ms) spoils only the
  ``lag`` pairs that straddle it, an eighth of all pairs, and the median ignores them;
  a least-squares fit would tilt the whole line towards the step.
* Anchor: the minimum of ``offset - drift * media`` over every packet, i.e. the fastest
  packet of the whole run once the drift is taken out. After a delay step upwards the
  earlier, faster path sets the anchor; after a step downwards the later one does. Both
  are right: the sender's clock did not jump, so one line holds for the whole run.
* Runs shorter than ``MIN_WINDOWS`` windows get no drift (at 100 ppm, 40 s drift 4 ms).
* ``|drift|`` is clamped to ``MAX_DRIFT``: more than 0.1 % is not a crystal, it is a
  queue filling up, and following it would move audio by seconds.

``clock_steps`` finds where, inside one SSRC's packet sequence, the offset floor steps
at a timestamp discontinuity: there the sender's clock jumped (a sender that restarted
its timestamps, or paused them), so the packets after it form a new run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "MAX_DRIFT",
    "MIN_WINDOWS",
    "STEP",
    "WINDOW",
    "ClockFit",
    "clock_steps",
    "fit_clock",
]

Seconds = npt.NDArray[np.float64]

#: Seconds of media time per lower-envelope point.
WINDOW = 5.0
#: Windows needed before a drift is estimated.
MIN_WINDOWS = 8
#: Largest drift believed (1000 ppm).
MAX_DRIFT = 1e-3
#: Offset step at a timestamp discontinuity that makes the next packets a new run.
STEP = 0.04
#: Packets on each side of a discontinuity whose minimum offset is compared.
STEP_SPAN = 25


@dataclass(frozen=True, slots=True)
class ClockFit:
    """``wall = anchor + media * (1 + drift)``: media seconds to recorder seconds."""

    anchor: float
    drift: float

    def wall(self, media: float) -> float:
        return self.anchor + media * (1.0 + self.drift)

    @property
    def sender_ppm(self) -> float:
        """How fast the sender's RTP clock runs against the recorder's, in ppm."""
        return (1.0 / (1.0 + self.drift) - 1.0) * 1e6


def fit_clock(media: Seconds, arrival: Seconds, *, window: float = WINDOW) -> ClockFit:
    """The lower-envelope line of one run; ``media`` ascending, both the same length."""
    if not len(media):
        raise ValueError("fit_clock needs at least one packet")
    # Offsets relative to the first arrival keep full float precision (epoch times
    # near 1.7e9 leave only 0.2 µs of resolution).
    origin = float(arrival[0])
    offset = (arrival - origin) - media
    span = float(media[-1] - media[0])
    if span < window * MIN_WINDOWS:
        return ClockFit(origin + float(offset.min()), 0.0)
    bins = ((media - media[0]) // window).astype(np.int64)
    starts = np.concatenate(([0], np.flatnonzero(np.diff(bins)) + 1))
    if len(starts) < MIN_WINDOWS:
        return ClockFit(origin + float(offset.min()), 0.0)
    minima = np.minimum.reduceat(offset, starts)
    counts = np.diff(np.append(starts, len(offset)))
    # The media time of each window's fastest packet: the first index per window
    # whose offset equals the window's minimum.
    hits = np.flatnonzero(offset == np.repeat(minima, counts))
    at = media[hits[np.searchsorted(hits, starts)]]
    lag = max(2, len(minima) // 8)
    slopes = (minima[lag:] - minima[:-lag]) / (at[lag:] - at[:-lag])
    drift = float(np.clip(np.median(slopes), -MAX_DRIFT, MAX_DRIFT))
    return ClockFit(origin + float(np.min(offset - drift * media)), drift)


def clock_steps(
    media: Seconds,
    arrival: Seconds,
    candidates: npt.NDArray[np.intp],
    *,
    threshold: float = STEP,
    span: int = STEP_SPAN,
) -> npt.NDArray[np.intp]:
    """The candidates where the offset floor steps by more than ``threshold``.

    The packets are in the sender's order (sequence numbers); a candidate is the index
    of the first packet after a timestamp discontinuity. The floor on each side is the
    minimum offset over ``span`` packets, so one late packet cannot fake a step.
    """
    if not len(candidates):
        return candidates
    offset = (arrival - float(arrival[0])) - media
    pad = np.full(span, np.inf)
    padded = np.concatenate((pad, offset, pad))
    window = np.arange(span)
    before = padded[candidates[:, None] + window].min(axis=1)
    after = padded[candidates[:, None] + span + window].min(axis=1)
    stepped: npt.NDArray[np.intp] = candidates[np.abs(after - before) > threshold]
    return stepped
