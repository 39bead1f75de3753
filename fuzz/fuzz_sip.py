"""Fuzz target for the SIP parser and the stream framer (atheris / libFuzzer style).

``test_one_input`` fails (raises something other than ``SipSyntaxError``) when:
parsing raises anything else, a parsed message does not survive ``bytes`` -> ``parse``
unchanged, or the framer yields a non-fatal error or buffers past its bound.

With atheris installed:  python fuzz/fuzz_sip.py [libFuzzer options]
Without atheris:         python fuzz/fuzz_sip.py [RUNS] [SEED]
runs every corpus message (``shared/corpus`` beside the checkout, or
``$CALLVAULT_SHARED/corpus``) and then RUNS (default 10000) seeded random mutations.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
from pathlib import Path

from callvault.sip.errors import SipSyntaxError
from callvault.sip.framing import StreamFramer
from callvault.sip.parser import parse

_FRAMER_LIMIT = 4096
# Bytes that matter to the grammar: mutations that insert them reach deep branches.
_INTERESTING = [
    b"\r\n",
    b"\n",
    b"\r\n ",
    b"\r\n\r\n",
    b":",
    b";",
    b",",
    b'"',
    b"\\",
    b"<",
    b">",
    b"%",
    b"%4",
    b"[",
    b"]",
    b"@",
    b"=",
    b"?",
    b"/",
    b" ",
    b"\t",
    b"\x00",
    b"\xff",
    b"0",
    b"-1",
    b"4294967296",
    b"SIP/2.0",
    b"Content-Length: ",
    b"l: 99999",
    b"Via: SIP/2.0/UDP ",
    b"sip:",
    b"tag=",
]


def test_one_input(data: bytes) -> None:
    """One fuzz input; only ``SipSyntaxError`` is an acceptable failure of parse."""
    try:
        message = parse(data)
    except SipSyntaxError:
        message = None
    if message is not None and parse(bytes(message)) != message:
        raise AssertionError("parse(bytes(message)) != message")
    framer = StreamFramer(_FRAMER_LIMIT)
    for i in range(0, len(data), 97):
        for item in framer.feed(data[i : i + 97]):
            if isinstance(item, SipSyntaxError):
                if not item.fatal_for_stream:
                    raise AssertionError("framer yielded a non-fatal error")
            else:
                with contextlib.suppress(SipSyntaxError):
                    parse(item)
        if framer.buffered > _FRAMER_LIMIT + 97:
            raise AssertionError("framer buffer exceeded its bound")


def _corpus() -> list[bytes]:
    default = Path(__file__).resolve().parents[1].parent / "shared"
    corpus = Path(os.environ.get("CALLVAULT_SHARED", default)) / "corpus"
    paths = sorted(p for p in corpus.rglob("*") if p.suffix in (".dat", ".sip"))
    if not paths:
        raise SystemExit(f"no corpus found under {corpus}")
    return [p.read_bytes() for p in paths]


def _mutate(data: bytes, seeds: list[bytes], rng: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        at = rng.randrange(len(buf) + 1)
        op = rng.randrange(6)
        if op == 0 and buf:
            buf[at % len(buf)] = rng.randrange(256)
        elif op == 1:
            buf[at:at] = rng.choice(_INTERESTING)
        elif op == 2:
            del buf[at : at + rng.randint(1, 16)]
        elif op == 3:
            end = buf.find(b"\n", at)
            line = bytes(buf[at : end + 1]) if end >= 0 else b""
            buf[at:at] = line
        elif op == 4:
            other = rng.choice(seeds)
            start = rng.randrange(len(other) + 1)
            buf[at:at] = other[start : start + rng.randint(1, 64)]
        else:
            buf[at : at + 1] = rng.choice(_INTERESTING)
    return bytes(buf)


def main(argv: list[str]) -> int:
    try:
        import atheris  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError:
        atheris = None
    if atheris is not None:
        atheris.Setup(argv, test_one_input)
        atheris.Fuzz()
        return 0
    runs = int(argv[1]) if len(argv) > 1 else 10000
    rng = random.Random(int(argv[2]) if len(argv) > 2 else 0)
    seeds = _corpus()
    for data in seeds:
        test_one_input(data)
    for _ in range(runs):
        test_one_input(_mutate(rng.choice(seeds), seeds, rng))
    print(f"fuzz_sip: {len(seeds)} corpus messages and {runs} mutations, no failure")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
