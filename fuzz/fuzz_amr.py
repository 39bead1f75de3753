"""Fuzz target: RFC 4867 AMR / AMR-WB payload parsing and decoding.

With atheris installed it runs under libFuzzer:  python fuzz/fuzz_amr.py --atheris [args]
Without it a seeded mutation loop over well-formed payloads of every frame type runs:
    python fuzz/fuzz_amr.py --runs 100000 [--seed N]
The first input byte picks AMR or AMR-WB and the packing. Anything raised by parsing
other than ``AmrPayloadError``, a parsed payload that does not pack back to an equal
payload, or anything but ``UndecodablePayload`` or exactly 20 ms per frame slot from
the decoder, is a bug: the input is printed and the run stops with status 1.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Callable

from callvault.media.amr import (
    AMR_NB_FRAME_BITS,
    AMR_WB_FRAME_BITS,
    NO_DATA,
    AmrFrame,
    AmrPayload,
    AmrPayloadError,
)
from callvault.media.decoders import PayloadDecoder, UndecodablePayload, decoder_for

_DECODERS: dict[tuple[bool, bool], PayloadDecoder] = {}


def _decoder(wideband: bool, octet_aligned: bool) -> PayloadDecoder:
    key = (wideband, octet_aligned)
    if key not in _DECODERS:
        codec, clock = ("AMR-WB", 16000) if wideband else ("AMR", 8000)
        fmtp = "octet-align=1" if octet_aligned else None
        _DECODERS[key] = decoder_for(codec, clock, fmtp)
    return _DECODERS[key]


def test_one_input(data: bytes) -> None:
    if not data:
        return
    wideband, octet_aligned = bool(data[0] & 1), bool(data[0] & 2)
    payload = data[1:]
    try:
        parsed = AmrPayload.parse(payload, wideband=wideband, octet_aligned=octet_aligned)
    except AmrPayloadError:
        parsed = None
    if parsed is not None:
        again = AmrPayload.parse(bytes(parsed), wideband=wideband, octet_aligned=octet_aligned)
        if again != parsed:
            raise AssertionError(f"packing is not a fixed point: {parsed!r} -> {again!r}")
    decoder = _decoder(wideband, octet_aligned)
    try:
        pcm = decoder.decode(payload)
    except UndecodablePayload:
        return  # a bad payload, or frame bits FFmpeg refuses: both are allowed
    if parsed is None:
        raise AssertionError("decoded a payload that does not parse")
    expected = len(parsed.frames) * decoder.sample_rate // 50
    if len(pcm) != expected:
        raise AssertionError(f"{len(pcm)} samples for {len(parsed.frames)} frames")


def seeds() -> list[bytes]:
    """One well-formed payload per frame type, mode and packing, some with 3 frames."""
    rng = random.Random(0)
    out = []
    for wideband, table in ((False, AMR_NB_FRAME_BITS), (True, AMR_WB_FRAME_BITS)):
        for octet_aligned in (False, True):
            flag = bytes((wideband | octet_aligned << 1,))
            for frame_type in [*range(len(table)), NO_DATA]:
                bits = table[frame_type] if frame_type < len(table) else 0
                size = (bits + 7) // 8
                value = rng.getrandbits(bits) << (size * 8 - bits) if bits else 0
                frame = AmrFrame(frame_type, True, value.to_bytes(size, "big"))
                for count in (1, 3):
                    payload = AmrPayload(
                        rng.randrange(16), (frame,) * count, wideband, octet_aligned
                    )
                    out.append(flag + bytes(payload))
    return out


def mutate(data: bytes, rng: random.Random) -> bytes:
    """A few bit flips, byte edits, cuts and insertions."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.randrange(5)
        if choice == 0 and len(buf) > 1:
            buf[rng.randrange(1, len(buf))] ^= 1 << rng.randrange(8)
        elif choice == 1 and len(buf) > 1:
            buf[rng.randrange(1, len(buf))] = rng.randrange(256)
        elif choice == 2:
            del buf[rng.randint(1, max(1, len(buf))) :]
        elif choice == 3:
            pos = rng.randint(1, max(1, len(buf)))
            buf[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif buf:
            buf[0] = rng.randrange(4)
    return bytes(buf)


def run(runs: int, seed: int, target: Callable[[bytes], None] | None = None) -> int:
    check = target or test_one_input
    rng = random.Random(seed)
    pool = seeds()
    for number in range(runs):
        data = mutate(rng.choice(pool), rng)
        try:
            check(data)
        except Exception as exc:  # the point of a fuzzer: report anything unexpected
            print(f"iteration {number}: {type(exc).__name__}: {exc}\ninput: {data!r}")
            return 1
    print(f"{runs} inputs, no failure")
    return 0


def main(argv: list[str]) -> int:
    if "--atheris" in argv:
        import atheris  # type: ignore[import-not-found]  # optional, not a dependency

        atheris.Setup([a for a in argv if a != "--atheris"], test_one_input)
        atheris.Fuzz()
        return 0
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv[1:])
    return run(args.runs, args.seed)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
