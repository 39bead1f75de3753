"""Sending recordings over HTTP: byte ranges, ETags, and transcoding for the browser.

Chromium needs HTTP Range to find an Ogg file's duration and to seek (REQUIREMENTS D5),
so every audio answer honours a single byte range (RFC 9110 section 14): ``206`` with
``Content-Range``, ``416`` with ``Content-Range: bytes */size`` when no byte of the range
exists, and the whole body (``200``) for a Range header this module does not serve (a
bad one, several ranges, or an ``If-Range`` that no longer matches), as RFC 9110 allows.
The ETag is the recording's SHA-256, so a browser revalidates instead of fetching again.
Bodies are streamed in 64 KiB chunks; a file is never read whole into memory.

Chromium plays every format callvault writes except GSM 6.10 in WAV. For those (and
any codec outside :data:`PLAYABLE_CODECS`) the player gets a 16-bit PCM WAV made on the
fly: libsndfile decodes the file from its start on every request, block by block, and
only the requested bytes are sent. GSM recordings are small (1.6 KB per second) and
decode at hundreds of times real time, so decoding per request costs little and keeps
memory bounded; the WAV's length is fixed by the recording's duration before decoding
starts, so every range of it is consistent with every other.

Bodies of encrypted recordings and of recordings kept in S3 are made by
:mod:`callvault.web.playback` and sent by :func:`serve` like any other (``release``
frees a decryption that is not sent: a 304 or a 416).

Permission checks are the caller's (``callvault.web.permissions``); nothing here looks
at who is asking.
"""

from __future__ import annotations

import io
import re
import struct
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import soundfile
from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from callvault.db.models import Recording
from callvault.web.errors import NotFound, WebError

__all__ = [
    "CHUNK_BYTES",
    "CONTENT_TYPES",
    "PLAYABLE_CODECS",
    "AudioBody",
    "ByteRange",
    "RangeNotSatisfiable",
    "Served",
    "content_disposition",
    "parse_range",
    "playable",
    "recording_body",
    "serve",
    "stored_audio",
    "transcoded_audio",
]

CHUNK_BYTES = 64 * 1024
#: Content-Type per ``Recording.format``.
CONTENT_TYPES = {"ogg": "audio/ogg", "mp3": "audio/mpeg", "wav": "audio/wav"}
#: Codecs as stored (FFmpeg's names, ``Recording.codec``) that Chromium plays as they are.
PLAYABLE_CODECS = frozenset({"opus", "vorbis", "mp3", "pcm_s16le", "pcm_alaw", "pcm_mulaw"})

_RANGE = re.compile(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", re.IGNORECASE | re.ASCII)
_WAV_HEADER_BYTES = 44
_DECODE_FRAMES = 32 * 1024
# Recordings need a login or a share link: no shared cache may keep them, and a browser
# revalidates with the ETag (a revoked link must not keep playing from a cache).
_CACHE_CONTROL = "private, no-cache"


class RangeNotSatisfiable(ValueError):
    """No byte of the requested range exists in the body (answer 416)."""


@dataclass(frozen=True, slots=True)
class ByteRange:
    start: int
    end: int  # inclusive, as in Content-Range

    @property
    def length(self) -> int:
        return self.end - self.start + 1


@dataclass(frozen=True, slots=True)
class AudioBody:
    """What is sent: its size, type and ETag, and how to read any span of it."""

    size: int
    media_type: str
    etag: str  # quoted, as in the header
    chunks: Callable[[int, int], Iterator[bytes]]  # (start, stop exclusive)
    transcoded: bool = False
    # Frees what reading holds (a running decryption) when the body is not sent.
    release: Callable[[], None] | None = None


@dataclass(frozen=True, slots=True)
class Served:
    response: Response
    #: The body is sent from its first byte: a new playback or download (audited once),
    #: not the next chunk of one already going on.
    from_start: bool


def playable(codec: str | None) -> bool:
    """Whether Chromium plays a file with this codec as it is stored."""
    return codec in PLAYABLE_CODECS


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one byte range to send, or ``None`` for the whole body.

    ``RangeNotSatisfiable`` when the range starts past the end (or asks for the last 0
    bytes). A header that is not one well-formed ``bytes`` range is ignored (RFC 9110
    section 14.2 lets a server ignore Range; several ranges are answered whole).
    """
    if header is None:
        return None
    match = _RANGE.fullmatch(header)
    if match is None:
        return None
    first, last = match.group(1), match.group(2)
    if not first and not last:
        return None
    if not first:  # suffix: the last N bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(f"bytes=-{suffix} of {size} bytes")
        return ByteRange(max(0, size - suffix), size - 1)
    start = int(first)
    if last and int(last) < start:
        return None  # invalid, not unsatisfiable: ignored
    if start >= size:
        raise RangeNotSatisfiable(f"bytes={start}- of {size} bytes")
    return ByteRange(start, min(int(last), size - 1) if last else size - 1)


def content_disposition(kind: str, file_name: str) -> str:
    """``attachment`` or ``inline`` with the file name (RFC 6266): a plain ASCII
    ``filename`` always, and ``filename*`` (RFC 8187, UTF-8) when the name is not plain
    ASCII, so old clients get a readable fallback and new ones the real name."""
    # Accents dropped (é -> e) where Unicode can split them off; anything else is "_".
    plain = (c for c in unicodedata.normalize("NFKD", file_name) if not unicodedata.combining(c))
    fallback = "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in plain).strip()
    header = f'{kind}; filename="{fallback or "recording"}"'
    if fallback != file_name:
        header += "; filename*=UTF-8''" + quote(file_name, safe="!#$&+-.^_`|~")
    return header


def stored_audio(path: Path, media_type: str, sha256: str | None) -> AudioBody:
    """The file as stored; ``FileNotFoundError`` when it is gone."""
    size = path.stat().st_size
    tag = sha256 or f"{size:x}-{path.stat().st_mtime_ns:x}"

    def chunks(start: int, stop: int) -> Iterator[bytes]:
        with path.open("rb") as handle:
            handle.seek(start)
            left = stop - start
            while left > 0:
                block = handle.read(min(CHUNK_BYTES, left))
                if not block:
                    return  # the file shrank under us: end the body short, never hang
                left -= len(block)
                yield block

    return AudioBody(size, media_type, f'"{tag}"', chunks)


def transcoded_audio(path: Path | bytes, sha256: str | None, duration_s: float | None) -> AudioBody:
    """The file (a path, or its bytes in memory) decoded into a 16-bit PCM WAV, for a
    browser that cannot play it.

    The WAV holds exactly ``duration_s`` of audio (the decoder's output is cut or padded
    with silence to it: GSM 6.10 decodes in 320-sample blocks, so its last block runs
    past the real end). ``soundfile.LibsndfileError`` (a ``RuntimeError``) when
    libsndfile cannot read the file; ``FileNotFoundError`` when it is gone.
    """
    info = soundfile.info(_sound_source(path))
    channels, rate = int(info.channels), int(info.samplerate)
    frames = round(duration_s * rate) if duration_s is not None else int(info.frames)
    data_bytes = frames * channels * 2
    header = _wav_header(channels, rate, data_bytes)

    def chunks(start: int, stop: int) -> Iterator[bytes]:
        position = start
        if position < len(header):
            yield header[position : min(stop, len(header))]
            position = len(header)
        offset = len(header)  # where the next decoded block starts in the WAV
        for block in _pcm_blocks(path, frames, channels):
            block_end = offset + len(block)
            if block_end > position:
                yield block[position - offset : min(stop, block_end) - offset]
                position = min(stop, block_end)
            if position >= stop:
                return
            offset = block_end

    size = len(path) if isinstance(path, bytes) else path.stat().st_size
    tag = f"{sha256 or size}-pcm16"
    return AudioBody(len(header) + data_bytes, "audio/wav", f'"{tag}"', chunks, transcoded=True)


class FileMissing(WebError):
    """A ready recording's file is not where its row says (500)."""


def recording_body(data_dir: Path, recording: Recording, *, as_stored: bool) -> AudioBody:
    """The body for a ready recording: as stored (download), or what the browser can
    play (transcoded when :func:`playable` says it must be).

    ``NotFound`` when it is not ready (saying its state: only ask after checking that
    the caller may see it), :class:`FileMissing` (500) when its file is missing,
    ``WebError`` (500) when it is unreadable.
    """
    if recording.state != "ready" or not recording.path:
        raise NotFound(
            f"recording {recording.id} is not ready yet (state: {recording.state})",
            state=recording.state,
        )
    path = data_dir / recording.path
    try:
        if as_stored or playable(recording.codec):
            media_type = CONTENT_TYPES.get(recording.format, "application/octet-stream")
            return stored_audio(path, media_type, recording.sha256)
        return transcoded_audio(path, recording.sha256, recording.duration_s)
    except FileNotFoundError:
        raise FileMissing(f"the file of recording {recording.id} is missing from storage") from None
    except RuntimeError as exc:  # libsndfile could not read it
        raise WebError(f"recording {recording.id} cannot be decoded for playback: {exc}") from None


def serve(request: Request, body: AudioBody, *, disposition: str | None = None) -> Served:
    """Answer ``request`` with ``body``: 200, 206, 304 or 416."""
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": body.etag,
        "Cache-Control": _CACHE_CONTROL,
        "X-Content-Type-Options": "nosniff",
    }
    if disposition:
        headers["Content-Disposition"] = disposition
    if _matches(request.headers.get("if-none-match"), body.etag):
        if body.release is not None:
            body.release()
        return Served(Response(status_code=304, headers=headers), from_start=False)
    range_header = request.headers.get("range")
    if_range = request.headers.get("if-range")
    if range_header is not None and if_range is not None and if_range.strip() != body.etag:
        range_header = None  # the client's copy is another version: send all of this one
    try:
        span = parse_range(range_header, body.size)
    except RangeNotSatisfiable as exc:
        if body.release is not None:
            body.release()
        headers["Content-Range"] = f"bytes */{body.size}"
        problem = {
            "type": "about:blank",
            "title": "Range Not Satisfiable",
            "status": 416,
            "detail": f"the range {exc} cannot be served",
        }
        refused = JSONResponse(
            problem, status_code=416, headers=headers, media_type="application/problem+json"
        )
        return Served(refused, from_start=False)
    if span is None:
        headers["Content-Length"] = str(body.size)
        stream = body.chunks(0, body.size)
        status = 200
    else:
        headers["Content-Length"] = str(span.length)
        headers["Content-Range"] = f"bytes {span.start}-{span.end}/{body.size}"
        stream = body.chunks(span.start, span.end + 1)
        status = 206
    response = StreamingResponse(
        stream, status_code=status, headers=headers, media_type=body.media_type
    )
    return Served(response, from_start=span is None or span.start == 0)


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    # Weak comparison (RFC 9110 section 13.1.2): W/ prefixes do not matter here.
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags


def _wav_header(channels: int, rate: int, data_bytes: int) -> bytes:
    block_align = channels * 2
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * block_align, block_align, 16)
        + b"data"
        + struct.pack("<I", data_bytes)
    )


def _sound_source(path: Path | bytes) -> Any:
    """What libsndfile opens: a file name, or decrypted audio held in memory."""
    return io.BytesIO(path) if isinstance(path, bytes) else str(path)


def _pcm_blocks(path: Path | bytes, frames: int, channels: int) -> Iterator[bytes]:
    """Exactly ``frames`` frames of interleaved little-endian int16, decoded from the
    start of the file (libsndfile cannot seek in GSM 6.10), padded with silence if the
    decoder gives fewer."""
    left = frames
    with soundfile.SoundFile(_sound_source(path)) as source:
        while left > 0:
            block = source.read(min(_DECODE_FRAMES, left), dtype="int16", always_2d=True)
            if len(block) == 0:
                break
            left -= len(block)
            yield block.astype("<i2", copy=False).tobytes()
    while left > 0:
        count = min(_DECODE_FRAMES, left)
        left -= count
        yield np.zeros(count * channels, dtype="<i2").tobytes()
