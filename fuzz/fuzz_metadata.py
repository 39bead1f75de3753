"""Fuzz target: rs-metadata parsing and whole SIPREC bodies on mutated real messages.

    python fuzz/fuzz_metadata.py [ITERATIONS] [SEED]   # built-in mutator over the corpus
    python fuzz/fuzz_metadata.py --atheris [atheris/libFuzzer options]

``parse_metadata`` may only raise ``MetadataError`` and ``read_offer`` only
``OfferError``; anything else is a bug: the input is printed and the run stops with
status 1.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fuzz_sdp import CORPUS, corpus_bodies, run

from callvault.siprec import MetadataError, OfferError, merge, parse_metadata, read_offer


def test_one_input(data: bytes) -> None:
    try:
        metadata = parse_metadata(data)
    except MetadataError:
        pass
    else:
        for participant in metadata.participants:
            metadata.labels_sent_by(participant)
        merge(metadata, metadata)
    with contextlib.suppress(OfferError):
        read_offer("multipart/mixed;boundary=uniqueBoundary", data)


def whole_bodies() -> list[bytes]:
    return [p.read_bytes().partition(b"\r\n\r\n")[2] for p in sorted(CORPUS.glob("*.sip"))]


def main(argv: list[str]) -> int:
    if "--atheris" in argv:
        import atheris  # type: ignore[import-not-found]  # optional, not a dependency

        atheris.Setup([a for a in argv if a != "--atheris"], test_one_input)
        atheris.Fuzz()
        return 0
    iterations = int(argv[1]) if len(argv) > 1 else 10_000
    seed = int(argv[2]) if len(argv) > 2 else 0
    pool = corpus_bodies("application/rs-metadata") + whole_bodies()
    return run(iterations, seed, test_one_input, pool)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
