"""From mixed channels to a stored file plus what the player shows about it.

Used by the segment and the stitched-call paths of the finalize job alike: encode the
channels into the configured format under a temporary name, rename it into place, and
compute the facts the UI draws (REQUIREMENTS D3, D5, U2): waveform peaks per channel,
talk intervals per party, paused intervals, DTMF marks, all in seconds from the start
of the file. With encryption on, the file is then encrypted to the active key and the
plaintext removed (:mod:`callvault.crypto.sealing`): the analysis is made from the
samples, before, and is not audio.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from callvault.crypto.sealing import SUFFIX, EncryptionTarget, SealedFile, seal_file
from callvault.media.analysis import talk_intervals, waveform_peaks
from callvault.media.encode import EncodedFile, OutputFormat, encode_file

__all__ = ["PEAKS_PER_SECOND", "Artifact", "party_talk", "write_artifact"]

Pcm = npt.NDArray[np.int16]

#: 300 points a minute per channel: enough for a waveform a screen wide per few minutes.
PEAKS_PER_SECOND = 5.0


@dataclass(frozen=True, slots=True)
class Artifact:
    file: EncodedFile
    peaks: bytes
    peaks_per_second: float
    analysis: dict[str, Any]
    sealed: SealedFile | None = None  # the stored ciphertext, when encrypted


def _intervals(ranges: Sequence[tuple[float, float]], duration: float) -> list[list[float]]:
    out: list[list[float]] = []
    for a, b in sorted(ranges):
        a, b = max(0.0, a), min(duration, b)
        if b <= a:
            continue
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], round(b, 3))
        else:
            out.append([round(a, 3), round(b, 3)])
    return out


def party_talk(
    label: str, channel: int, pcm: Pcm, sample_rate: int, offset: float = 0.0
) -> dict[str, Any]:
    """One party's talk intervals (from its own audio, before mixing), ``offset`` seconds
    into the file."""
    return {
        "party": label,
        "channel": channel,
        "intervals": [
            [round(a + offset, 3), round(b + offset, 3)]
            for a, b in talk_intervals(pcm, sample_rate)
        ],
    }


def write_artifact(
    final: Path,
    channels: Sequence[Pcm],
    sample_rate: int,
    fmt: OutputFormat,
    *,
    talk: Sequence[dict[str, Any]] = (),
    paused: Sequence[Sequence[tuple[float, float]]] = (),
    dtmf: Sequence[dict[str, Any]] = (),
    extra: dict[str, Any] | None = None,
    seal: EncryptionTarget | None = None,
) -> Artifact:
    """Encode ``channels`` to ``final`` (atomically) and analyse them; with ``seal``,
    encrypt ``final`` into ``final.gpg`` and remove ``final``.

    ``talk`` comes from :func:`party_talk`; ``paused[i]`` are channel i's paused
    intervals and ``dtmf`` the DTMF marks, all in seconds from the start of the file.
    """
    pcm = np.stack(channels) if channels else np.zeros((1, 0), dtype=np.int16)
    # Analysed first: with ``seal`` nothing may fail between writing the plaintext and
    # encrypting it (a failing encryption removes the plaintext itself).
    duration = pcm.shape[1] / sample_rate if sample_rate else 0.0
    peaks = waveform_peaks(pcm, sample_rate, PEAKS_PER_SECOND)
    analysis: dict[str, Any] = {
        "duration_s": round(duration, 3),
        "talk": list(talk),
        "paused": [_intervals(p, duration) for p in paused],
        "dtmf": sorted(dtmf, key=lambda d: float(d["at"])),
        "silence_ratio": [_silence_ratio(channel, sample_rate) for channel in pcm],
    }
    if extra:
        analysis.update(extra)
    partial = final.with_name(final.name + ".partial")
    sealed: SealedFile | None = None
    try:
        encoded = encode_file(partial, pcm, sample_rate, fmt)
        if seal is None:
            partial.replace(final)
        else:
            # Straight from the encoder's file to the ciphertext: the plaintext never
            # takes a final name (an older file of that name, the one a remake replaces,
            # stays until the new one is committed).
            sealed = seal_file(
                partial, seal, final.with_name(final.name + SUFFIX), keep_on_failure=False
            )
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    encoded = dataclasses.replace(encoded, path=final)
    # Interleaved by point: channel 0's peak, channel 1's, then the next point.
    points = peaks.T.astype(np.uint8).tobytes()
    return Artifact(encoded, points, PEAKS_PER_SECOND, analysis, sealed)


def _silence_ratio(channel: Pcm, sample_rate: int) -> float:
    """Share of 20 ms blocks below -50 dBFS: a one-sided or dead stream shows near 1.0."""
    block = max(1, sample_rate // 50)
    usable = len(channel) - len(channel) % block
    if not usable:
        return 1.0
    blocks = channel[:usable].reshape(-1, block).astype(np.int32)
    quiet = np.abs(blocks).max(axis=1) < 104  # 32768 * 10**(-50/20)
    return round(float(quiet.mean()), 4)
