"""OpenPGP encryption of recordings (REQUIREMENTS T8-T12).

- :mod:`~callvault.crypto.openpgp`: gpg through python-gnupg in throwaway homes (why
  python-gnupg, and why no passphrase ever outlives one operation, is said there):
  inspect keys, check a pair, encrypt a file, seal small secrets.
- :mod:`~callvault.crypto.stream`: decrypt a stored ciphertext as a stream of chunks.
- :mod:`~callvault.crypto.keys`: the keys in the database: set (rotation), list, expiry
  warnings, private keys sealed at rest with the server secret.
- :mod:`~callvault.crypto.sealing`: the finalize job's step (encrypt the finished file,
  remove the plaintext) and what becomes of raw captures.
- :mod:`~callvault.crypto.access`: a recording's bytes through its store, decrypted
  when they are ciphertext (the player, downloads, the CLI).
"""

from callvault.crypto.openpgp import (
    BadPassphrase,
    InvalidKey,
    KeyInfo,
    KeyMismatch,
    OpenPGPError,
    PassphraseRequired,
    UnusableKey,
    WrongKey,
    check_pair,
    encrypt_file,
    inspect_key,
)
from callvault.crypto.stream import PlaintextStream

__all__ = [
    "BadPassphrase",
    "InvalidKey",
    "KeyInfo",
    "KeyMismatch",
    "OpenPGPError",
    "PassphraseRequired",
    "PlaintextStream",
    "UnusableKey",
    "WrongKey",
    "check_pair",
    "encrypt_file",
    "inspect_key",
]
