"""What OpenPGP encryption costs a recording: encrypt after finalize, decrypt for playback.

A benchmark, not a test: it prints a markdown table (and saves it in bench/out/). Keys
are made by the gpg CLI as customers make them (tests/crypto/gpgkeys.py: RSA 3072 with a
passphrase, ed25519/cv25519 without). Files are random bytes (Opus does not compress
either) of the sizes an hour of the default format makes, and a large one.

Measured, per key and size, through callvault's own code (python-gnupg over Debian's
gpg, as the finalize job and the player run it):

* encrypt: ``crypto.openpgp.encrypt_file`` (wall time, MB/s);
* first byte: ``PlaintextStream.open`` until the first plaintext chunk is in hand — what
  the player waits for before audio starts (a seek decrypts from the start again);
* decrypt: the whole file streamed through ``PlaintextStream`` (MB/s);
* peak RSS of this process during the decryption (the stream is bounded; gpg is a
  separate process).

    .venv/bin/python bench/encryption.py [--sizes 5.5,10,300] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent), str(BENCH.parent / "src")]

from tests.crypto.gpgkeys import Key, keyring  # noqa: E402

from callvault.crypto.openpgp import encrypt_file  # noqa: E402
from callvault.crypto.stream import PlaintextStream  # noqa: E402

CHUNK = 64 * 1024


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            yield block


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(key: Key, size_mb: float, repeat: int, work: Path) -> dict[str, float]:
    plain, sealed = work / "plain.bin", work / "plain.bin.gpg"
    size = int(size_mb * 1_000_000)
    with plain.open("wb") as handle:
        left = size
        while left:
            block = os.urandom(min(left, 1 << 20))
            handle.write(block)
            left -= len(block)
    encrypts, firsts, decrypts = [], [], []
    for _ in range(repeat):
        started = time.perf_counter()
        encrypt_file(plain, sealed, key.public, key.fingerprint)
        encrypts.append(time.perf_counter() - started)
        started = time.perf_counter()
        stream = PlaintextStream.open(_chunks(sealed), key.private, key.passphrase)
        firsts.append(time.perf_counter() - started)
        total = sum(len(chunk) for chunk in stream)
        decrypts.append(time.perf_counter() - started)
        assert total == size, (total, size)
    plain.unlink()
    sealed.unlink()
    return {
        "encrypt_s": statistics.median(encrypts),
        "first_ms": statistics.median(firsts) * 1000,
        "decrypt_s": statistics.median(decrypts),
        "rss_mib": _rss_mib(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="5.5,10,300", help="file sizes in MB")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    keys = keyring()
    lines = [
        f"# OpenPGP cost per recording ({datetime.now(UTC):%Y-%m-%d}, median of {args.repeat})",
        "",
        "| key | file MB | encrypt s (MB/s) | first byte ms | decrypt s (MB/s) | peak RSS MiB |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    with tempfile.TemporaryDirectory(prefix="bench-crypto-") as directory:
        for name, key in (("RSA 3072 + passphrase", keys.rsa), ("ed25519/cv25519", keys.ed)):
            for size_mb in (float(s) for s in args.sizes.split(",")):
                got = measure(key, size_mb, args.repeat, Path(directory))
                lines.append(
                    f"| {name} | {size_mb:g} | {got['encrypt_s']:.2f} "
                    f"({size_mb / got['encrypt_s']:.0f}) | {got['first_ms']:.0f} | "
                    f"{got['decrypt_s']:.2f} ({size_mb / got['decrypt_s']:.0f}) | "
                    f"{got['rss_mib']:.0f} |"
                )
                print(lines[-1], flush=True)
    table = "\n".join(lines) + "\n"
    out = BENCH / "out" / f"encryption-{datetime.now(UTC):%Y%m%d-%H%M%S}.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(table)
    print()
    print(table)
    print(f"(saved in {out})")


if __name__ == "__main__":
    main()
