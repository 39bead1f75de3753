"""Time to the first byte of audio: what a user waits for after pressing play.

Makes a data directory with one finalized two-party call (60 s, the default Ogg Opus),
starts a real ``callvault serve`` on it (SIP, RTP and HTTP in one process, as in
production), logs in over HTTP and times ``GET /api/v1/recordings/{id}/audio`` the way
Chromium asks for it (``Range: bytes=0-``): from sending the request to receiving the
first byte of the body, on a fresh connection each time (a new tab), and on a kept-alive
one (seeking). Target (issue 4): under 100 ms.

    .venv/bin/python bench/audio_latency.py [--requests 200] [--seconds 60]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT))

import load  # noqa: E402

PASSWORD = "bench password 1"


def make_recording(data_dir: Path, seconds: float) -> int:
    """One captured two-party G.711 call, finalized into the default format."""
    from tests.media import payloads
    from tests.recording.golden import (
        RECORDER,
        SBC,
        START,
        captured_session,
        settings_for,
    )

    from callvault.db import Database
    from callvault.recording.finalize import finalize_recording

    database = Database.for_data_dir(data_dir)
    database.migrate()
    recording_id, _ = captured_session(database, seconds=seconds + 1)
    tone = payloads.tone(440, seconds, 8000)
    capture = data_dir / "captures" / "cisco_cube_2streams_gtd.sip.pcap"
    capture.parent.mkdir(parents=True, exist_ok=True)
    payloads.write_capture(
        capture,
        [
            (
                SBC,
                (RECORDER, 30000),
                payloads.encode_pcmu(tone).packets(t0=START + 0.5, ssrc=1, payload_type=0),
            ),
            (
                SBC,
                (RECORDER, 30002),
                payloads.encode_pcmu(tone).packets(t0=START + 0.5, ssrc=2, payload_type=0),
            ),
        ],
    )
    state = finalize_recording(database, data_dir, recording_id, settings=settings_for(data_dir))
    database.dispose()
    assert state == "ready", state
    return recording_id


def login(port: int) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    body = json.dumps({"username": "bench", "password": PASSWORD})
    connection.request("POST", "/api/v1/session", body, {"Content-Type": "application/json"})
    reply = connection.getresponse()
    reply.read()
    cookie = reply.getheader("set-cookie") or ""
    connection.close()
    if reply.status != 200:
        raise RuntimeError(f"login failed: {reply.status}")
    return cookie.split(";", 1)[0]


def first_byte(connection: http.client.HTTPConnection, path: str, cookie: str) -> float:
    start = time.perf_counter()
    connection.request("GET", path, headers={"Range": "bytes=0-", "Cookie": cookie})
    reply = connection.getresponse()
    reply.read(1)
    elapsed = time.perf_counter() - start
    reply.read()  # the rest, so the connection can be used again
    if reply.status != 206:
        raise RuntimeError(f"audio answered {reply.status}")
    return elapsed * 1000


def measure(port: int, path: str, cookie: str, count: int, fresh: bool) -> list[float]:
    times = []
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for _ in range(count):
        if fresh:
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        times.append(first_byte(connection, path, cookie))
    connection.close()
    return times


def row(label: str, times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    return f"| {label} | {statistics.median(ordered):.1f} | {p95:.1f} | {ordered[-1]:.1f} |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the recording")
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="callvault-audio-"))
    recording_id = make_recording(data_dir, args.seconds)
    subprocess.run(
        [
            str(load.CALLVAULT),
            "users",
            "add",
            "--username",
            "bench",
            "--password",
            PASSWORD,
            "--scope",
            "all",
            "--data",
            str(data_dir),
        ],
        check=True,
        capture_output=True,
    )
    server = load.Server(data_dir, (46000, 47999))
    lines = [
        "| connection | p50 ms | p95 ms | max ms |",
        "| --- | --- | --- | --- |",
    ]
    try:
        server.start()
        cookie = login(server.http_port)
        path = f"/api/v1/recordings/{recording_id}/audio"
        measure(server.http_port, path, cookie, 5, fresh=True)  # warm up
        lines.append(
            row(
                "new connection each time",
                measure(server.http_port, path, cookie, args.requests, True),
            )
        )
        lines.append(
            row(
                "kept alive (seeking)",
                measure(server.http_port, path, cookie, args.requests, False),
            )
        )
    finally:
        server.stop(grace=5)
    print(
        f"Time to the first byte of a {args.seconds:g} s recording's audio, "
        f"{args.requests} requests, one `callvault serve` on loopback (no RTP load):\n"
    )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
