"""The RTP fuzz target runs clean on a short seeded mutation campaign."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

FUZZ = Path(__file__).resolve().parents[2] / "fuzz" / "fuzz_rtp.py"


def test_fuzz_target_finds_nothing_in_a_short_run() -> None:
    result = subprocess.run(
        [sys.executable, str(FUZZ), "--runs", "5000", "--seed", "11"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "5000 inputs, no failure"
