#!/usr/bin/env bash
# Install callvault into ./.venv (creates it), with Debian packages it needs.
# Usage: scripts/install.sh [--dev]   (--dev adds the test tools and test peers)
set -euo pipefail
cd "$(dirname "$0")/.."

# gnupg: recordings are encrypted with Debian's gpg (python-gnupg drives it).
apt_packages=(python3 python3-venv python3-dev gcc gnupg)
if [[ "${1:-}" == "--dev" ]]; then
    # Real peers the tests talk to (see ../shared/TESTING.md).
    # libbcg729-0 and libvo-amrwbenc0: G.729 and AMR-WB encoders the tests use (through
    # ctypes) to make RTP payloads that no encoder in PyAV's FFmpeg can make.
    # chromium: the browser tests drive Debian's Chromium with Playwright (never a
    # downloaded browser).
    apt_packages+=(sip-tester postgresql tshark espeak-ng sox libbcg729-0 libvo-amrwbenc0
        chromium)
fi

missing=()
for pkg in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "installing Debian packages: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [[ ! -x .venv/bin/python ]]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
if [[ "${1:-}" == "--dev" ]]; then
    .venv/bin/python -m pip install -q -e ".[dev]"
else
    .venv/bin/python -m pip install -q -e .
fi
