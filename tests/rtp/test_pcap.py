"""pcap capture files: writing, reading back, crash tolerance, and tshark as a real peer."""

from __future__ import annotations

import contextlib
import io
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callvault.rtp.packet import RtpPacket
from callvault.rtp.pcap import CapturedPacket, PcapError, PcapWriter, read_pcap

T0 = 1_700_000_000.123456
V4 = (("192.0.2.10", 40000), ("198.51.100.7", 20000))
V6 = (("2001:db8::10", 40002), ("2001:db8:1::7", 20002))


def ones_complement_sum(data: bytes) -> int:
    """Reference RFC 1071 sum, word by word."""
    if len(data) % 2:
        data += b"\x00"
    total = 0
    for (word,) in struct.iter_unpack("!H", data):
        total += word
        total = (total & 0xFFFF) + (total >> 16)
    return total


def write_capture(packets: list[tuple[float, tuple[str, int], tuple[str, int], bytes]]) -> bytes:
    buffer = io.BytesIO()
    writer = PcapWriter(buffer)
    writer.write_header()
    for ts, src, dst, payload in packets:
        writer.write_packet(ts, src, dst, payload)
    return buffer.getvalue()


def rtp(seq: int, size: int = 160) -> bytes:
    return bytes(RtpPacket(0, seq, 160 * seq, 0xCAFE, payload=bytes([seq & 0xFF]) * size))


def test_global_header_is_classic_microsecond_raw_ip() -> None:
    data = write_capture([])
    # magic, version 2.4, zone 0, sigfigs 0, snap length 262144, LINKTYPE_RAW (101)
    assert data.hex(" ", 4) == "d4c3b2a1 02000400 00000000 00000000 00000400 65000000"


def test_round_trip_ipv4_and_ipv6() -> None:
    sent = [
        (T0, *V4, rtp(1)),
        (T0 + 0.02, *V6, rtp(2, 161)),  # odd length: checksum pads a zero byte
        (T0 + 0.04, *V4, rtp(3, 0)),
        (T0 + 0.06, *V6, b""),
    ]
    got = list(read_pcap(io.BytesIO(write_capture(sent))))
    assert [(p.src, p.dst, p.payload) for p in got] == [(s, d, p) for _, s, d, p in sent]
    assert [p.ts for p in got] == pytest.approx([t for t, *_ in sent], abs=1e-6)
    assert repr(got[0]) == (
        "<CapturedPacket 1700000000.123456 192.0.2.10:40000 -> 198.51.100.7:20000 172 bytes>"
    )


def test_reading_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "session.pcap"
    path.write_bytes(write_capture([(T0, *V4, rtp(1))]))
    assert [p.payload for p in read_pcap(path)] == [rtp(1)]
    assert [p.payload for p in read_pcap(str(path))] == [rtp(1)]


def test_ipv4_header_and_lengths_are_valid() -> None:
    data = write_capture([(T0, *V4, rtp(7))])
    sec, usec, captured, original = struct.unpack_from("<IIII", data, 24)
    assert (sec, usec) == (1_700_000_000, 123456)
    assert captured == original == 20 + 8 + 172
    ip = data[40:60]
    assert ip[0] == 0x45 and ip[9] == 17 and ip[8] == 64
    assert struct.unpack_from("!H", ip, 2)[0] == 200
    assert ones_complement_sum(ip) == 0xFFFF  # header checksum verifies
    udp = data[60:68]
    assert struct.unpack("!HHHH", udp) == (40000, 20000, 180, 0)


@pytest.mark.parametrize("size", [0, 1, 160, 161, 1400])
def test_ipv6_udp_checksum_verifies(size: int) -> None:
    payload = bytes((i * 37) & 0xFF for i in range(size))
    data = write_capture([(T0, *V6, payload)])
    ip, udp = data[40:80], data[80:]
    assert struct.unpack_from("!H", ip, 4)[0] == 8 + size
    pseudo = ip[8:40] + struct.pack("!IxxxB", 8 + size, 17)
    assert struct.unpack_from("!H", udp, 6)[0] != 0
    assert ones_complement_sum(pseudo + udp) == 0xFFFF


def test_header_cache_follows_payload_length() -> None:
    got = list(read_pcap(io.BytesIO(write_capture([(T0, *V4, b"a" * n) for n in range(100)]))))
    assert [len(p.payload) for p in got] == list(range(100))


def test_ipv4_mapped_addresses_are_written_as_ipv4() -> None:
    data = write_capture([(T0, ("::ffff:192.0.2.10", 5000), ("192.0.2.1", 6000), b"x")])
    (packet,) = read_pcap(io.BytesIO(data))
    assert (packet.src, packet.dst) == (("192.0.2.10", 5000), ("192.0.2.1", 6000))


def test_mixed_address_families_are_refused() -> None:
    writer = PcapWriter(io.BytesIO())
    with pytest.raises(ValueError, match=r"cannot put IPv4 192\.0\.2\.1 and IPv6 2001:db8::1"):
        writer.write_packet(T0, ("192.0.2.1", 1), ("2001:db8::1", 2), b"")


def test_writer_counts_and_never_flushes_by_itself() -> None:
    class Recording(io.BytesIO):
        flushes = 0

        def flush(self) -> None:
            self.flushes += 1
            super().flush()

    buffer = Recording()
    writer = PcapWriter(buffer)
    assert writer.write_header() == 24
    assert writer.write_packet(T0, *V4, rtp(1)) == 16 + 28 + 172
    assert writer.write_packet(T0, *V6, rtp(2)) == 16 + 48 + 172
    assert buffer.flushes == 0
    writer.flush()
    assert buffer.flushes == 1
    assert writer.packets_written == 2
    assert writer.bytes_written == len(buffer.getvalue())


def test_truncated_final_record_is_tolerated() -> None:
    data = write_capture([(T0 + i * 0.02, *V4, rtp(i)) for i in range(3)])
    record = 16 + 28 + 172
    complete = 24 + 2 * record
    for cut in range(complete, len(data)):
        packets = list(read_pcap(io.BytesIO(data[:cut])))
        assert [p.payload for p in packets] == [rtp(0), rtp(1)]
    assert len(list(read_pcap(io.BytesIO(data)))) == 3


def test_header_only_and_empty_files_have_no_packets() -> None:
    assert list(read_pcap(io.BytesIO(write_capture([])))) == []
    assert list(read_pcap(io.BytesIO(b""))) == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xd4\xc3\xb2\xa1\x02\x00", "pcap global header truncated: 6 of 24 bytes"),
        (b"GIF89a" + bytes(18), "bad pcap magic 47494638"),
        (
            bytes.fromhex("0a0d0d0a") + bytes(20),
            "pcapng files are not supported, only classic pcap",
        ),
        (
            struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 113),
            "pcap link type 113 is not supported (raw IP or Ethernet only)",
        ),
        (
            struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101)
            + struct.pack("<IIII", 0, 0, 10**7, 10**7),
            "pcap record at offset 24 claims 10000000 bytes",
        ),
    ],
)
def test_bad_files_raise_pcap_error(data: bytes, message: str) -> None:
    with pytest.raises(PcapError) as info:
        list(read_pcap(io.BytesIO(data)))
    assert str(info.value) == message


def _ipv4_udp(
    src: bytes, dst: bytes, sport: int, dport: int, payload: bytes, proto: int = 17
) -> bytes:
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, proto, 0, src, dst) + udp


def test_reads_big_endian_nanosecond_ethernet_captures_from_elsewhere() -> None:
    header = struct.pack(">IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 1)
    ip = _ipv4_udp(bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]), 1111, 2222, b"hello")
    plain = b"\x00" * 12 + b"\x08\x00" + ip
    tagged = b"\x00" * 12 + b"\x81\x00\x00\x05\x08\x00" + ip
    arp = b"\x00" * 12 + b"\x08\x06" + b"\x00" * 28
    tcp = b"\x00" * 12 + b"\x08\x00" + _ipv4_udp(b"\x01" * 4, b"\x02" * 4, 1, 2, b"x", proto=6)
    records = b""
    for i, frame in enumerate([plain, arp, tagged, tcp]):
        records += struct.pack(">IIII", 100, 500_000_000 + i, len(frame), len(frame)) + frame
    got = list(read_pcap(io.BytesIO(header + records)))
    assert got == [
        CapturedPacket(100.5, ("10.0.0.1", 1111), ("10.0.0.2", 2222), b"hello"),
        CapturedPacket(100.500000002, ("10.0.0.1", 1111), ("10.0.0.2", 2222), b"hello"),
    ]


def test_fragments_and_snapped_records_are_skipped() -> None:
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101)
    ip = bytearray(_ipv4_udp(b"\x01" * 4, b"\x02" * 4, 1, 2, b"abc"))
    fragment = bytes(ip[:6]) + b"\x20\x00" + bytes(ip[8:])  # more fragments
    whole = bytes(ip)
    records = struct.pack("<IIII", 1, 0, len(fragment), len(fragment)) + fragment
    records += struct.pack("<IIII", 1, 0, len(whole), len(whole) + 50) + whole  # snapped
    records += struct.pack("<IIII", 2, 0, len(whole), len(whole)) + whole
    got = list(read_pcap(io.BytesIO(header + records)))
    assert [(p.ts, p.payload) for p in got] == [(2.0, b"abc")]


@given(st.binary(max_size=300))
def test_reader_raises_only_pcap_error(tail: bytes) -> None:
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101)
    for data in (tail, header + tail):
        with contextlib.suppress(PcapError):
            list(read_pcap(io.BytesIO(data)))


@given(
    st.lists(
        st.tuples(
            st.floats(0, 4e9, allow_nan=False),
            st.sampled_from([V4, V6]),
            st.binary(max_size=1500),
        ),
        max_size=20,
    )
)
def test_round_trip_property(
    packets: list[tuple[float, tuple[tuple[str, int], ...], bytes]],
) -> None:
    sent = [(ts, pair[0], pair[1], payload) for ts, pair, payload in packets]
    got = list(read_pcap(io.BytesIO(write_capture(sent))))
    assert [(p.src, p.dst, p.payload) for p in got] == [(s, d, p) for _, s, d, p in sent]
    assert all(abs(p.ts - s[0]) <= 1e-6 for p, s in zip(got, sent, strict=True))


def tshark() -> str:
    path = shutil.which("tshark")
    assert path is not None, "tshark must be installed (apt-get install -y tshark)"
    return path


def test_tshark_decodes_the_capture_as_rtp(tmp_path: Path) -> None:
    path = tmp_path / "session.pcap"
    sent = []
    for i in range(20):
        sent.append((T0 + 0.02 * i, *V4, rtp(1000 + i)))
        sent.append((T0 + 0.02 * i + 0.001, *V6, rtp(2000 + i, 161)))
    path.write_bytes(write_capture(sent))
    result = subprocess.run(
        [
            tshark(), "-n", "-r", str(path),
            "-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
            "-d", "udp.port==20000,rtp", "-d", "udp.port==20002,rtp",
            "-T", "fields", "-E", "separator=,",
            "-e", "ip.src", "-e", "ipv6.src", "-e", "udp.srcport", "-e", "udp.dstport",
            "-e", "rtp.seq", "-e", "rtp.ssrc", "-e", "ip.checksum.status",
            "-e", "udp.checksum.status",
        ],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    rows = [line.split(",") for line in result.stdout.splitlines()]
    assert len(rows) == 40
    v4 = [r for r in rows if r[0]]
    v6 = [r for r in rows if r[1]]
    assert [int(r[4]) for r in v4] == list(range(1000, 1020))
    assert [int(r[4]) for r in v6] == list(range(2000, 2020))
    assert {(r[0], r[2], r[3], r[5]) for r in v4} == {
        ("192.0.2.10", "40000", "20000", "0x0000cafe")
    }
    assert {(r[1], r[2], r[3]) for r in v6} == {("2001:db8::10", "40002", "20002")}
    # Wireshark's checksum status: 1 = good, 3 = not present (UDP over IPv4 may omit it).
    assert {(r[6], r[7]) for r in v4} == {("1", "3")}
    assert {r[7] for r in v6} == {"1"}
