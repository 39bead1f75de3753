"""Statistics of an interrupted segment, recounted from its capture.

Live statistics reach the database every few seconds; after a crash the capture file
is the better witness, so finalize replays it through ``StreamStatistics`` once.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from pathlib import Path

from callvault.db.models import Segment
from callvault.rtp.pcap import read_pcap
from callvault.rtp.stats import StreamStatistics

_SEQ_TS_SSRC = struct.Struct("!HII")


def rescan_capture(capture: Path, segment: Segment) -> None:
    """Overwrite each stream's counters with what its capture actually holds."""
    by_port = {s.local_port: s for s in segment.streams if s.local_port}
    stats = {port: StreamStatistics(stream.clock_rate or 8000) for port, stream in by_port.items()}
    for packet in read_pcap(capture):
        counter = stats.get(packet.dst[1])
        data = packet.payload
        if counter is None or len(data) < 12 or data[0] & 0xC0 != 0x80:
            continue
        if 192 <= data[1] <= 223:
            continue  # RTCP on the RTP port (rtcp-mux)
        seq, timestamp, ssrc = _SEQ_TS_SSRC.unpack_from(data, 2)
        counter.update(seq, timestamp, ssrc, len(data), packet.ts)
    for port, counter in stats.items():
        snap = counter.snapshot()
        if snap.packets == 0:
            continue
        row = by_port[port]
        row.packets = snap.packets
        row.bytes = snap.bytes_received
        row.lost = snap.lost
        row.reordered = snap.reordered
        row.duplicates = snap.duplicates
        row.jitter_ms = round(snap.jitter_ms, 3)
        row.ssrc = snap.ssrc
        row.ssrc_changes = snap.ssrc_changes
        if snap.first_packet_at is not None:
            row.first_packet_at = datetime.fromtimestamp(snap.first_packet_at, UTC)
        if snap.last_packet_at is not None:
            row.last_packet_at = datetime.fromtimestamp(snap.last_packet_at, UTC)
