"""Where the shared test corpus lives: ``shared/`` beside the repository checkout."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CALLVAULT_SHARED", REPO.parent / "shared"))
CORPUS = SHARED / "corpus"
SIPREC_CORPUS = CORPUS / "siprec"
TORTURE_CORPUS = CORPUS / "torture"
