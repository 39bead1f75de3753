"""A real ``callvault serve`` in a subprocess, and the tools that talk to it.

End-to-end tests start the server exactly as an operator would (the console script,
its flags, a fresh data directory) on loopback ports nobody else uses, and read results
the way an operator would: ``callvault calls list --json``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CALLVAULT = Path(sys.executable).parent / "callvault"


def free_port(kind: int = socket.SOCK_DGRAM, *, also_tcp: bool = True) -> int:
    """A port free for UDP (and TCP, for SIP) on 127.0.0.1."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, kind) as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if not also_tcp:
            return port
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            try:
                tcp.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port")


_next_rtp_base = [22000 + (os.getpid() % 200) * 100]


def rtp_range() -> tuple[int, int]:
    """A small RTP range of our own per server (tests may run servers side by side)."""
    base = _next_rtp_base[0]
    _next_rtp_base[0] += 100
    if _next_rtp_base[0] > 60000:
        _next_rtp_base[0] = 22000
    return base, base + 99


@dataclass
class ServerProcess:
    data_dir: Path
    sip_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=lambda: free_port(socket.SOCK_STREAM))
    rtp_ports: tuple[int, int] = field(default_factory=rtp_range)
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    def start(self, *, wait: bool = True) -> ServerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir / f"server-{time.time_ns()}.log"
        env = {**os.environ, "CALLVAULT_LOG_FORMAT": "text", **self.extra_env}
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                str(CALLVAULT),
                "serve",
                "--data",
                str(self.data_dir),
                "--sip",
                f"127.0.0.1:{self.sip_port}",
                "--http",
                f"127.0.0.1:{self.http_port}",
                "--rtp-ports",
                f"{self.rtp_ports[0]}-{self.rtp_ports[1]}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.data_dir,
        )
        log.close()
        if wait:
            self.wait_healthy()
        return self

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"callvault serve exited early:\n{self.log()}")
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.http_port}/healthz", timeout=1
                ) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"callvault serve never became healthy:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def stop(self) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def cli(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``callvault ARGS --data DIR`` as an operator on the server's machine runs it
        (the server's environment, or ``env``)."""
        return subprocess.run(
            [str(CALLVAULT), *args, "--data", str(self.data_dir)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, **self.extra_env} if env is None else env,
        )

    def calls(self) -> list[dict[str, Any]]:
        result = self.cli("calls", "list", "--json")
        assert result.returncode == 0, result.stderr
        calls: list[dict[str, Any]] = json.loads(result.stdout)
        return calls

    def wait_for(self, predicate: Any, timeout: float = 60.0, what: str = "condition") -> Any:
        """Poll ``calls list`` until ``predicate(calls)`` is truthy; return its value."""
        deadline = time.monotonic() + timeout
        calls: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            calls = self.calls()
            value = predicate(calls)
            if value:
                return value
            time.sleep(0.3)
        raise AssertionError(f"timed out waiting for {what}; calls: {calls}\n{self.log()}")
