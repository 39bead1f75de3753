"""Fuzz target: SDP parsing and the SRS's offer/answer on mutated real offers.

    python fuzz/fuzz_sdp.py [ITERATIONS] [SEED]   # built-in mutator over the corpus SDPs
    python fuzz/fuzz_sdp.py --atheris [atheris/libFuzzer options]

Any exception other than ``SdpError`` from parsing, or any exception at all from
choosing streams and building an answer for a parsed offer, is a bug: the input is
printed and the run stops with status 1.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

from callvault.sdp import SdpError, SessionDescription, build_answer, choose_streams
from callvault.sip.multipart import MultipartError, parse_body

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "siprec"


def corpus_bodies(mime_prefix: str) -> list[bytes]:
    """The body parts of the corpus messages whose type starts with ``mime_prefix``."""
    out: list[bytes] = []
    for path in sorted(CORPUS.glob("*.sip")):
        head, _, body = path.read_bytes().partition(b"\r\n\r\n")
        content_type = ""
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, _, value = line.partition(":")
            if name.strip().lower() in ("content-type", "c"):
                content_type = value.strip()
        try:
            parts = parse_body(content_type, body)
        except MultipartError:
            continue
        out.extend(p.body for p in parts if p.mime_type.startswith(mime_prefix))
    return out


_TOKENS = [
    b"\r\n",
    b"\n",
    b"=",
    b":",
    b" ",
    b"/",
    b"0",
    b"65536",
    b"a=",
    b"m=audio ",
    b"c=IN IP6 ",
    b"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:",
    b"|2^",
    b"&",
    b"<",
    b">",
    b"\x00",
    b"\xff",
]


def mutate(data: bytes, rng: random.Random, pool: list[bytes]) -> bytes:
    """A few random byte, token, line and splice edits."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        choice = rng.randrange(6)
        pos = rng.randint(0, len(buf))
        if choice == 0 and buf:
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        elif choice == 1:
            buf[pos:pos] = rng.choice(_TOKENS)
        elif choice == 2 and buf:
            del buf[pos : pos + rng.randint(1, 16)]
        elif choice == 3:
            lines = bytes(buf).split(b"\n")
            line = rng.choice(lines)
            lines.insert(rng.randint(0, len(lines)), line)
            buf = bytearray(b"\n".join(lines))
        elif choice == 4:
            other = rng.choice(pool)
            start = rng.randint(0, len(other))
            buf[pos:pos] = other[start : start + rng.randint(1, 64)]
        else:
            buf = buf[: rng.randint(0, len(buf))]
    return bytes(buf)


def test_one_input(data: bytes) -> None:
    try:
        sdp = SessionDescription.parse(data)
    except SdpError:
        return
    text = str(sdp)
    if SessionDescription.parse(text).__str__() != text:
        raise AssertionError("serialisation is not a fixed point")
    choices = choose_streams(sdp)
    ports = [20000 + 2 * i for i in range(len(choices))]
    answer = build_answer(
        sdp, choices, address="192.0.2.1", ports=ports, session_id=1, session_version=1
    )
    SessionDescription.parse(str(answer))


def run(iterations: int, seed: int, target: object, pool: list[bytes]) -> int:
    check = target if callable(target) else test_one_input
    rng = random.Random(seed)
    for number in range(iterations):
        data = mutate(rng.choice(pool), rng, pool)
        try:
            check(data)
        except Exception as exc:  # the point of a fuzzer: report anything unexpected
            print(f"iteration {number}: {type(exc).__name__}: {exc}\ninput: {data!r}")
            return 1
    print(f"{iterations} inputs, no failure (seed {seed})")
    return 0


def main(argv: list[str]) -> int:
    if "--atheris" in argv:
        import atheris  # type: ignore[import-not-found]  # optional, not a dependency

        atheris.Setup([a for a in argv if a != "--atheris"], test_one_input)
        atheris.Fuzz()
        return 0
    iterations = int(argv[1]) if len(argv) > 1 else 10_000
    seed = int(argv[2]) if len(argv) > 2 else 0
    return run(iterations, seed, test_one_input, corpus_bodies("application/sdp"))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
