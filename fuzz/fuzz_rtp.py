"""Fuzz target for the RTP layer's parsers: RTP, RTCP and pcap captures.

With atheris installed it runs under libFuzzer:  python fuzz/fuzz_rtp.py [-libfuzzer=args]
Without it, or given --runs / --seed, a seeded mutation loop over golden packets runs:
    python fuzz/fuzz_rtp.py --runs 100000 [--seed N]
Anything raised other than ``RtpError`` / ``RtcpError`` / ``PcapError``, or a parsed
packet that does not survive being built and parsed again, is a bug.
"""

from __future__ import annotations

import argparse
import io
import random
import struct
import sys

from callvault.rtp.packet import (
    RtpError,
    RtpHeaderExtension,
    RtpPacket,
    parse_rtp,
    parse_rtp_header,
    peek_rtp,
)
from callvault.rtp.pcap import PcapError, read_pcap
from callvault.rtp.rtcp import Bye, ReceiverReport, RtcpError, SenderReport, parse_rtcp

SEEDS = [
    bytes(RtpPacket(0, 1, 160, 0xDEADBEEF, payload=b"\xff" * 160)),
    bytes(
        RtpPacket(
            96,
            65535,
            0xFFFFFFFF,
            1,
            payload=b"abc",
            marker=True,
            csrc=(1, 2),
            extension=RtpHeaderExtension(0xBEDE, b"\x10\xaa\x00\x00"),
            padding_size=3,
        )
    ),
    bytes(SenderReport(1, 2**63, 160, 10, 1600)) + bytes(Bye((1,), "bye")),
    bytes(ReceiverReport(7)),
    struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101)
    + struct.pack("<IIII", 1, 0, 29, 29)
    + bytes.fromhex("4500001d000040004011000001020304050607080001000200090000")
    + b"x",
]


def test_one_input(data: bytes) -> None:
    try:
        packet = parse_rtp(data)
    except RtpError:
        pass
    else:
        assert peek_rtp(data) is not None
        assert parse_rtp(bytes(packet)) == packet
        header = parse_rtp_header(data)
        assert data[header.payload_offset :][: header.payload_length] == packet.payload
    try:
        packets = parse_rtcp(data)
    except RtcpError:
        pass
    else:
        try:
            rebuilt = b"".join(bytes(p) for p in packets)
        except RtcpError:
            pass  # a BYE reason re-encoded past 255 bytes (invalid UTF-8 replaced)
        else:
            if rebuilt:
                assert parse_rtcp(rebuilt) == packets
    try:
        for _ in read_pcap(io.BytesIO(data)):
            pass
    except PcapError:
        pass


def _mutate(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        choice = rng.random()
        if choice < 0.5 and out:
            out[rng.randrange(len(out))] = rng.randrange(256)
        elif choice < 0.7 and out:
            del out[rng.randrange(len(out)) :]
        elif choice < 0.9:
            out.insert(rng.randint(0, len(out)), rng.randrange(256))
        else:
            out += rng.choice(SEEDS)
    return bytes(out)


def main(argv: list[str]) -> int:
    try:
        import atheris  # type: ignore[import-not-found, import-untyped, unused-ignore]
    except ImportError:
        atheris = None
    if atheris is None or any(arg.startswith("--") for arg in argv[1:]):
        parser = argparse.ArgumentParser(description=__doc__)
        parser.add_argument("--runs", type=int, default=100_000)
        parser.add_argument("--seed", type=int, default=0)
        args = parser.parse_args(argv[1:])
        rng = random.Random(args.seed)
        for _ in range(args.runs):
            test_one_input(_mutate(rng, rng.choice(SEEDS)))
        print(f"{args.runs} inputs, no failure")
        return 0
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
