"""The server secret that signs share links: 32 random bytes in ``DATA/secret.key``.

Made at the first start (mode 0600). Nodes that serve the same links (several web
nodes behind a load balancer) must share this file; replacing it invalidates every
share link at once, which is also how an administrator revokes them all.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

__all__ = ["SECRET_FILE", "load_secret"]

SECRET_FILE = "secret.key"


def load_secret(data_dir: Path) -> bytes:
    path = data_dir / SECRET_FILE
    try:
        secret = path.read_bytes()
    except FileNotFoundError:
        secret = secrets.token_bytes(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use theirs
            return path.read_bytes()
        with os.fdopen(fd, "wb") as handle:
            handle.write(secret)
    if len(secret) < 32:
        raise ValueError(f"{path} holds {len(secret)} bytes; a secret needs at least 32")
    return secret
