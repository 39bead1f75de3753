"""HTTP Range, ETags, content types and the on-the-fly transcoding of GSM-in-WAV.

The range parser is checked on its own (every form RFC 9110 defines, and that nothing
but ``RangeNotSatisfiable`` ever comes out of it), then through the real app on real
recordings: the bytes of every range are the file's bytes.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import av
import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from callvault.web.audio import (
    ByteRange,
    RangeNotSatisfiable,
    content_disposition,
    parse_range,
)
from callvault.web.principal import WebContext
from tests.recording.golden import peak
from tests.web.test_recordings_api import file_bytes, ready_recording, stored

GSM = {"recording.format": "wav", "recording.codec": "gsm", "recording.layout": "mono"}


# -- the Range header on its own --------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-0", ByteRange(0, 0)),
        ("bytes=0-499", ByteRange(0, 499)),
        ("bytes=500-999", ByteRange(500, 999)),
        ("bytes=9500-", ByteRange(9500, 9999)),
        ("bytes=-500", ByteRange(9500, 9999)),
        ("bytes=-20000", ByteRange(0, 9999)),  # more than there is: all of it
        ("bytes=9000-20000", ByteRange(9000, 9999)),  # the end is clamped
        ("BYTES = 1 - 2", ByteRange(1, 2)),
        ("bytes=5-4", None),  # invalid (last < first): ignored, the whole body
        ("bytes=-", None),
        ("items=0-1", None),  # another unit: ignored
        ("bytes=0-1,5-6", None),  # several ranges: answered whole
        ("bytes=abc", None),
        ("bytes=\u0663-", None),  # an Arabic-Indic 3 is not a byte position
    ],
)
def test_range_forms(header: str | None, expected: ByteRange | None) -> None:
    assert parse_range(header, 10_000) == expected


@pytest.mark.parametrize(
    ("header", "size"), [("bytes=10000-", 10_000), ("bytes=-0", 10_000), ("bytes=0-", 0)]
)
def test_unsatisfiable_ranges(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, size)


@given(st.text(max_size=40), st.integers(min_value=0, max_value=10**9))
def test_any_header_gives_a_range_inside_the_body_or_one_error(header: str, size: int) -> None:
    try:
        span = parse_range(header, size)
    except RangeNotSatisfiable:
        return
    if span is not None:
        assert 0 <= span.start <= span.end < size and span.length == span.end - span.start + 1


@given(
    st.integers(min_value=0, max_value=10**6),
    st.integers(min_value=0, max_value=10**6),
    st.integers(min_value=1, max_value=10**6),
)
def test_byte_ranges_round_trip_through_the_header(first: int, last: int, size: int) -> None:
    start, end = min(first, last), max(first, last)
    if start >= size:
        with pytest.raises(RangeNotSatisfiable):
            parse_range(f"bytes={start}-{end}", size)
    else:
        assert parse_range(f"bytes={start}-{end}", size) == ByteRange(start, min(end, size - 1))


def test_content_disposition_plain_and_non_ascii() -> None:
    assert content_disposition("attachment", "2023-11-14_x.ogg") == (
        'attachment; filename="2023-11-14_x.ogg"'
    )
    assert content_disposition("attachment", 'Łódź "1".ogg') == (
        "attachment; filename=\"_odz _1_.ogg\"; filename*=UTF-8''%C5%81%C3%B3d%C5%BA%20%221%22.ogg"
    )


# -- through the app ----------------------------------------------------------------------


@pytest.fixture
def owner(make_user: Callable[..., int], login: Callable[..., TestClient]) -> TestClient:
    make_user(username="agent", extension="7301")
    return login("agent")


def test_every_kind_of_range_gives_the_files_bytes_and_an_etag(
    ctx: WebContext, owner: TestClient
) -> None:
    recording_id = ready_recording(ctx)
    data = file_bytes(ctx, recording_id)
    size = len(data)
    url = f"/api/v1/recordings/{recording_id}/audio"
    full = owner.get(url)
    assert full.status_code == 200 and full.content == data
    assert full.headers["accept-ranges"] == "bytes"
    assert full.headers["content-length"] == str(size)
    cases = {
        "bytes=0-99": (0, 99),
        "bytes=1000-1999": (1000, 1999),
        "bytes=-500": (size - 500, size - 1),
        "bytes=2000-": (2000, size - 1),
        f"bytes=0-{size * 2}": (0, size - 1),
    }
    for header, (start, end) in cases.items():
        reply = owner.get(url, headers={"Range": header})
        assert reply.status_code == 206, header
        assert reply.content == data[start : end + 1], header
        assert reply.headers["content-range"] == f"bytes {start}-{end}/{size}", header
        assert reply.headers["content-length"] == str(end - start + 1), header
    refused = owner.get(url, headers={"Range": f"bytes={size}-"})
    assert refused.status_code == 416
    assert refused.headers["content-range"] == f"bytes */{size}"

    # The ETag is the file's SHA-256: a browser revalidates instead of fetching again.
    etag = f'"{stored(ctx, recording_id).sha256}"'
    assert full.headers["etag"] == etag and full.headers["content-type"] == "audio/ogg"
    assert "private" in full.headers["cache-control"]
    assert owner.get(url, headers={"If-None-Match": etag}).status_code == 304
    assert owner.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
    # If-Range with this version's tag: the range; with another: the whole new version.
    headers = {"Range": "bytes=0-9", "If-Range": etag}
    assert owner.get(url, headers=headers).status_code == 206
    headers["If-Range"] = '"an older file"'
    stale = owner.get(url, headers=headers)
    assert stale.status_code == 200 and stale.content == data


@pytest.mark.parametrize(
    ("settings", "content_type", "codec"),
    [
        ({"recording.format": "mp3"}, "audio/mpeg", "mp3"),
        ({"recording.format": "wav"}, "audio/wav", "pcm_s16le"),
        ({"recording.format": "wav", "recording.codec": "alaw"}, "audio/wav", "pcm_alaw"),
    ],
)
def test_content_type_follows_the_format(
    ctx: WebContext,
    owner: TestClient,
    settings: dict[str, str],
    content_type: str,
    codec: str,
) -> None:
    recording_id = ready_recording(ctx, settings)
    assert stored(ctx, recording_id).codec == codec
    for tail in ("audio", "download"):
        reply = owner.get(f"/api/v1/recordings/{recording_id}/{tail}")
        assert reply.headers["content-type"] == content_type, tail
        assert reply.content == file_bytes(ctx, recording_id), tail


def test_gsm_is_transcoded_to_pcm_wav_for_the_player(ctx: WebContext, owner: TestClient) -> None:
    recording_id = ready_recording(ctx, GSM)
    assert stored(ctx, recording_id).codec == "gsm_ms"
    url = f"/api/v1/recordings/{recording_id}/audio"
    reply = owner.get(url)
    assert reply.status_code == 200 and reply.headers["content-type"] == "audio/wav"
    assert reply.content != file_bytes(ctx, recording_id)
    assert reply.headers["etag"] == f'"{stored(ctx, recording_id).sha256}-pcm16"'
    with av.open(io.BytesIO(reply.content), mode="r") as container:
        stream = container.streams.audio[0]
        assert (stream.codec_context.name, stream.codec_context.sample_rate) == ("pcm_s16le", 8000)
        samples = np.concatenate([f.to_ndarray() for f in container.decode(stream)], axis=1)
    assert samples.shape == (1, 24_000)  # exactly the recording's 3.0 s
    # Both tones, mixed to mono, survived GSM: 500 Hz and 1500 Hz during 0.5-2.5 s.
    talk = samples[0, 8000:16000].astype(np.float64)
    assert abs(peak(talk, 8000) - 500) < 30 or abs(peak(talk, 8000) - 1500) < 30
    assert np.abs(samples[0, :3000]).max() < 200  # silence before the tones
    # Ranges of the transcoded WAV are slices of the same bytes (seeking works).
    size = len(reply.content)
    assert reply.headers["content-length"] == str(size) == str(44 + 24_000 * 2)
    for header, part in {
        "bytes=0-43": reply.content[:44],
        "bytes=40-5000": reply.content[40:5001],
        "bytes=30000-": reply.content[30000:],
        "bytes=-100": reply.content[-100:],
    }.items():
        ranged = owner.get(url, headers={"Range": header})
        assert ranged.status_code == 206 and ranged.content == part, header
        assert ranged.headers["content-range"].endswith(f"/{size}"), header
    assert owner.get(url, headers={"Range": f"bytes={size}-"}).status_code == 416
    # The player is told why, and a download is the file as stored, not transcoded.
    meta = owner.get(f"/api/v1/recordings/{recording_id}").json()
    assert (meta["codec"], meta["playable"]) == ("gsm_ms", False)
    download = owner.get(f"/api/v1/recordings/{recording_id}/download")
    assert download.content == file_bytes(ctx, recording_id)
    assert download.headers["content-type"] == "audio/wav"
