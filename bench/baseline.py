"""Baseline for the load benchmark: what a bare uvloop receiver takes from the same sender.

It binds the same number of UDP sockets as the recorder would (one per stream, 1 MiB
receive buffer like ``callvault.server.rtp``), counts datagrams in a callback that does
nothing else, and runs ``rtp-sender`` exactly as ``load.py`` does. The gap between this
and ``load.py`` is what callvault's per-packet work costs; this run alone shows the
machine's and the generator's ceiling (on a shared 2-core box, also its neighbours').

    .venv/bin/python bench/baseline.py --streams 4000 --hold 20 [--senders 1]
        [--work]   # also unpack the header and call time(), like the recorder's first lines
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import struct
import sys
import time
from pathlib import Path
from typing import Any

import uvloop

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import load  # noqa: E402
import probes  # noqa: E402

_HEADER = struct.Struct("!HII")


class Counter(asyncio.DatagramProtocol):
    count = 0

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        Counter.count += 1


class Working(asyncio.DatagramProtocol):
    count = 0

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        Working.count += 1
        time.time()
        _HEADER.unpack_from(data, 2)


async def receiver(streams: int, low: int, work: bool, ready: Path, stop: Path) -> None:
    loop = asyncio.get_running_loop()
    protocol = Working if work else Counter
    for n in range(streams):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sock.bind(("127.0.0.1", low + 2 * n))
        await loop.create_datagram_endpoint(protocol, sock=sock)
    _write(ready, "ready")
    for _ in range(100_000):  # bounded: at most ~14 h of 0.5 s polls
        if _exists(stop):
            break
        await asyncio.sleep(0.5)
    _write(ready, str(protocol.count))


def _write(path: Path, text: str) -> None:
    path.write_text(text)


def _exists(path: Path) -> bool:
    return path.exists()


async def drive(args: argparse.Namespace) -> None:
    work_dir = Path(os.environ.get("TMPDIR", "/tmp")) / f"callvault-baseline-{os.getpid()}"
    work_dir.mkdir(exist_ok=True)
    ready, stop = work_dir / "ready", work_dir / "stop"
    low = args.rtp[0]
    command = [sys.executable, __file__, "--serve", str(args.streams), "--low", str(low)]
    command += ["--ready", str(ready), "--stop", str(stop)] + (["--work"] if args.work else [])
    child = await asyncio.create_subprocess_exec(*command)
    try:
        for _ in range(600):
            if ready.exists():
                break
            await asyncio.sleep(0.1)
        ports = work_dir / "ports.txt"
        ports.write_text("".join(f"{low + 2 * n}\n" for n in range(args.streams)))
        cpu0, machine0 = probes.tree_cpu_seconds(child.pid), probes.machine_cpu()
        udp0, queues0 = probes.udp_counters(), probes.socket_queues(low, low + 2 * args.streams)
        from report import StepResult

        result = StepResult(calls=args.streams // 2, hold_s=args.hold, senders=args.senders)
        hold, _ = await load.run_senders(args, ports, _NoServer(), result)  # type: ignore[arg-type]
        cpu1, machine1 = probes.tree_cpu_seconds(child.pid), probes.machine_cpu()
        udp1 = probes.udp_counters()
        await load.wait_drained(args, result)
        drops = probes.socket_queues(low, low + 2 * args.streams).drops - queues0.drops
        stop.write_text("stop")
        await asyncio.wait_for(child.wait(), 30)
        received = int(ready.read_text())
        busy, _ = machine1.since(machine0)
        receiver_cpu = 100 * probes.cpu_delta(cpu0, cpu1) / hold
        print(
            f"streams={args.streams} work={args.work} sent={result.sent} received={received} "
            f"missing={result.sent - received} socket_drops={drops} "
            f"rcvbuf_errors={udp1['RcvbufErrors'] - udp0['RcvbufErrors']} "
            f"rate={result.sent / hold:,.0f}/s receiver_cpu={receiver_cpu:.0f}% "
            f"sender_cpu={result.sender_cpu_pct:.0f}% sender_max_late_ms="
            f"{result.sender_max_late_ms:.1f} machine_busy={busy:.0f}% "
            f"others={busy - receiver_cpu - result.sender_cpu_pct:.0f}% "
            f"max_backlog_kib={result.max_backlog_kib:,.0f} drain_s={result.drain_s:.1f} "
            f"{' '.join(result.notes)}"
        )
    finally:
        if child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.kill()
            await child.wait()
        for path in work_dir.iterdir():
            path.unlink()
        work_dir.rmdir()


class _NoServer:
    pid = 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=4000)
    parser.add_argument("--hold", type=float, default=20.0)
    parser.add_argument("--senders", type=int, default=1)
    parser.add_argument("--slots", type=int, default=20)
    parser.add_argument("--rtp-ports", default="10000-19999")
    parser.add_argument("--work", action="store_true")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--low", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--ready", help=argparse.SUPPRESS)
    parser.add_argument("--stop", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        uvloop.run(receiver(args.serve, args.low, args.work, Path(args.ready), Path(args.stop)))
        return 0
    low, _, high = args.rtp_ports.partition("-")
    args.rtp = (int(low), int(high))
    args.profile = args.perf = 0
    if 2 * args.streams > args.rtp[1] - args.rtp[0] + 1:
        parser.error("--rtp-ports too small for --streams")
    load.build_sender()
    asyncio.run(drive(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
