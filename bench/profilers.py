"""Profilers the load benchmark can attach to the server during a step (all optional).

* ``pyspy``: py-spy, Python stacks per thread (where the event loop's time goes by
  Python function; C code called from a function counts as that function's own time).
* ``perf_record`` / ``perf_top``: Linux perf, CPU-clock samples of the server process
  including the kernel and native code (uvloop, libuv, CPython), for what py-spy
  cannot see: the receive syscalls, epoll, the interpreter itself.
* ``SyscallCounter``: ``perf stat`` on syscall tracepoints over a whole phase, so
  syscalls per packet can be computed exactly.

Each runs a bounded subprocess with a time limit and reads only.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import sys
import time
from pathlib import Path

PY_SPY = Path(sys.executable).parent / "py-spy"
SYSCALLS = (
    "recvfrom",
    "recvmsg",
    "recvmmsg",
    "epoll_wait",
    "epoll_pwait",
    "write",
    "sendto",
    "futex",
    "getrandom",
)


async def _run(command: list[str], limit: float) -> tuple[int | None, str]:
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), limit)
    except TimeoutError:
        process.kill()
        await process.wait()
        return None, "timed out"
    return process.returncode, (stdout + stderr).decode(errors="replace")


async def pyspy(pid: int, out: Path, delay: float, seconds: int) -> Path | None:
    """py-spy record (raw collapsed stacks, per thread, busy samples; pauses the
    server briefly per sample, which keeps the stacks consistent)."""
    await asyncio.sleep(delay)
    code, text = await _run(
        [
            str(PY_SPY),
            *("record", "--pid", str(pid), "--duration", str(seconds)),
            *("--rate", "100", "--format", "raw", "--threads"),
            *("--output", str(out)),
        ],
        seconds + 30,
    )
    if code != 0:
        print(f"py-spy failed: {text[-300:]}", file=sys.stderr)
        return None
    return out


async def perf_record(pid: int, out: Path, delay: float, seconds: int) -> Path | None:
    """perf record: CPU-clock samples of every thread of ``pid``, kernel included."""
    if shutil.which("perf") is None:
        return None
    await asyncio.sleep(delay)
    code, text = await _run(
        [
            "perf",
            "record",
            *("-F", "997", "-p", str(pid), "-o", str(out), "--", "sleep", str(seconds)),
        ],
        seconds + 60,
    )
    if code != 0:
        print(f"perf record failed: {text[-300:]}", file=sys.stderr)
        return None
    return out


async def perf_top(data: Path, limit: int = 25) -> list[tuple[float, str, str]]:
    """(percent, shared object, symbol) of the top self-time symbols."""
    code, text = await _run(
        [
            "perf",
            "report",
            *("-i", str(data), "--stdio", "--no-children", "--sort", "dso,sym"),
            "--percent-limit",
            "0.7",
        ],
        120,
    )
    rows: list[tuple[float, str, str]] = []
    if code != 0:
        return rows
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "%" not in line.split()[0]:
            continue
        parts = line.split(None, 2)
        if len(parts) < 3:
            continue
        with contextlib.suppress(ValueError):
            symbol = parts[2].split("] ", 1)[-1].strip()
            rows.append((float(parts[0].rstrip("%")), parts[1], symbol))
    return rows[:limit]


class SyscallCounter:
    """``perf stat`` counting syscall entries of one process until ``stop``."""

    def __init__(self, pid: int, out: Path) -> None:
        self.pid = pid
        self.out = out
        self.process: asyncio.subprocess.Process | None = None
        self.started = 0.0

    async def start(self) -> None:
        if shutil.which("perf") is None:
            return
        events = ",".join(f"syscalls:sys_enter_{name}" for name in SYSCALLS)
        self.process = await asyncio.create_subprocess_exec(
            *("perf", "stat", "-x", ",", "-e", events, "-p", str(self.pid)),
            *("-o", str(self.out)),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        self.started = time.monotonic()

    async def stop(self) -> dict[str, int]:
        if self.process is None:
            return {}
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(self.process.wait(), 30)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            return {}
        counts: dict[str, int] = {}
        with contextlib.suppress(OSError):
            for line in self.out.read_text().splitlines():
                fields = line.split(",")
                if len(fields) > 2 and fields[2].startswith("syscalls:sys_enter_"):
                    with contextlib.suppress(ValueError):
                        counts[fields[2].removeprefix("syscalls:sys_enter_")] = int(fields[0])
        return counts
