"""Load benchmark: concurrent two-stream G.711 SIPREC calls against a real ``callvault serve``.

For each step (a number of calls) it starts a fresh server on loopback (its own data
directory and ports), sets the calls up with a small SIP client (``siprec_client.py``,
paced), then runs the compiled C sender (``sender.c``: 50 packets/s per stream, 172-byte
PCMU packets, sendmmsg, absolute-time pacing) for the hold time while it samples the
server's receive queues. After the hold it lets the server drain what it has queued,
sends BYE for every call, waits for every segment to end and reads what the recorder
counted per stream from its database (read-only). Server CPU is read from /proc for the
hold only; kernel drops come from the server's own sockets and from the machine's UDP
counters. Every wait is bounded and the server and senders are killed on any exit.

    .venv/bin/python bench/load.py --calls 100,500,1000,2000 --hold 60 [--keep-data]
        [--senders 1] [--rate 200] [--window 50] [--rtp-ports 10000-19999]
        [--profile 20] [--perf 10] [--json]

The table is printed and written to bench/out/load-<timestamp>.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import probes  # noqa: E402
import profilers  # noqa: E402
import report  # noqa: E402
import siprec_client  # noqa: E402

CALLVAULT = Path(sys.executable).parent / "callvault"
SOURCE = BENCH / "sender.c"
BINARY = BENCH / "bin" / "rtp-sender"
OUT = BENCH / "out"
PACKETS_PER_SECOND = 50


def build_sender() -> Path:
    """Compile the C sender when the binary is missing or older than its source."""
    if not BINARY.exists() or BINARY.stat().st_mtime < SOURCE.stat().st_mtime:
        BINARY.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["gcc", "-O2", "-Wall", "-o", str(BINARY), str(SOURCE)], check=True, timeout=120
        )
    return BINARY


def free_port(kind: int) -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (SIP listens on both)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, kind) as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        other = socket.SOCK_STREAM if kind == socket.SOCK_DGRAM else socket.SOCK_DGRAM
        with socket.socket(socket.AF_INET, other) as second:
            try:
                second.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port")


class Server:
    """One ``callvault serve`` in its own process group, as an operator would start it."""

    def __init__(self, data_dir: Path, rtp: tuple[int, int]) -> None:
        self.data_dir = data_dir
        self.rtp = rtp
        self.sip_port = free_port(socket.SOCK_DGRAM)
        self.http_port = free_port(socket.SOCK_STREAM)
        self.log_path = data_dir / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        env = {**os.environ, "CALLVAULT_LOG_FORMAT": "text"}
        with self.log_path.open("wb") as log:
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
                    f"{self.rtp[0]}-{self.rtp[1]}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.data_dir,
                start_new_session=True,  # its own process group: finalize workers too
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"callvault serve exited:\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                self._get("/healthz")  # any 2xx; urlopen raises on errors
                return
            time.sleep(0.1)
        raise RuntimeError(f"callvault serve never became healthy:\n{self.log_tail()}")

    def _get(self, path: str) -> str:
        url = f"http://127.0.0.1:{self.http_port}{path}"
        with urllib.request.urlopen(url, timeout=5) as reply:
            return str(reply.read().decode())

    def metrics(self) -> dict[str, float]:
        out: dict[str, float] = {}
        with contextlib.suppress(OSError):
            for line in self._get("/metrics").splitlines():
                if line and not line.startswith("#"):
                    name, _, value = line.rpartition(" ")
                    with contextlib.suppress(ValueError):
                        out[name] = float(value)
        return out

    def log_tail(self, size: int = 4000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-size:]
        return ""

    def stop(self, grace: float) -> None:
        """SIGTERM (the server ends live sessions itself), then SIGKILL the group."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=grace)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)


def read_database(data_dir: Path, expected_per_stream: int) -> dict[str, int]:
    """What the recorder stored, read-only: live segments, per-stream totals."""
    uri = f"file:{data_dir / 'callvault.db'}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=10)) as db:
        active = db.execute("SELECT count(*) FROM segment WHERE state = 'active'").fetchone()[0]
        ended = db.execute("SELECT count(*) FROM segment WHERE state != 'active'").fetchone()[0]
        streams, packets, lost, short = db.execute(
            "SELECT count(*), coalesce(sum(packets), 0), coalesce(sum(lost), 0),"
            " coalesce(sum(packets < ?), 0) FROM stream",
            (expected_per_stream,),
        ).fetchone()
    return {
        "active": active,
        "ended": ended,
        "streams": streams,
        "packets": packets,
        "lost": lost,
        "short": short,
    }


def parse_sender(line: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in line.split():
        key, _, value = item.partition("=")
        with contextlib.suppress(ValueError):
            out[key] = float(value)
    return out


async def run_senders(
    args: argparse.Namespace, ports_file: Path, server: Server, result: report.StepResult
) -> tuple[float, Path | None]:
    """Run the C senders for the hold; sample the server's RTP socket queues meanwhile.

    Returns the hold's wall-clock length (first due packet to the last sender's exit)
    and the hold's profile, if one was asked for.
    """
    lead_ns = 300_000_000
    start_ns = time.monotonic_ns() + lead_ns
    processes = [
        await asyncio.create_subprocess_exec(
            str(BINARY),
            *("--dest", "127.0.0.1", "--ports", str(ports_file)),
            *("--seconds", str(args.hold), "--start-ns", str(start_ns)),
            *("--proc", str(i), "--nproc", str(args.senders), "--slots", str(args.slots)),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for i in range(args.senders)
    ]
    profiler = perf = None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    if args.profile:
        delay = lead_ns / 1e9 + max(0.0, (args.hold - args.profile) / 2)
        seconds = min(args.profile, max(1, int(args.hold)))
        out = OUT / f"pyspy-hold-{result.calls}-{stamp}.txt"
        profiler = asyncio.create_task(profilers.pyspy(server.pid, out, delay, seconds))
    if args.perf:
        # After the py-spy window if both are asked for: two samplers at once skew both.
        delay = lead_ns / 1e9 + max(0.0, (args.hold - args.perf) / 2)
        if args.profile:
            delay = min(delay + args.profile, lead_ns / 1e9 + max(0.0, args.hold - args.perf))
        seconds = min(args.perf, max(1, int(args.hold)))
        out = OUT / f"perf-hold-{result.calls}-{stamp}.data"
        perf = asyncio.create_task(profilers.perf_record(server.pid, out, delay, seconds))
    outputs = asyncio.ensure_future(asyncio.gather(*(p.communicate() for p in processes)))
    deadline = time.monotonic() + args.hold + 60
    max_backlog = 0
    try:
        while not outputs.done():
            if time.monotonic() > deadline:
                result.notes.append("senders did not finish in time and were killed")
                break
            await asyncio.wait({outputs}, timeout=2.0)
            max_backlog = max(max_backlog, probes.socket_queues(*args.rtp).queued_bytes)
    finally:
        for process in processes:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
    hold = (time.monotonic_ns() - start_ns) / 1e9
    result.max_backlog_kib = max_backlog / 1024
    user = system = 0.0
    for stdout, stderr in await outputs:
        values = parse_sender(stdout.decode())
        if "sent" not in values:
            result.notes.append(f"sender output unreadable: {stdout!r} {stderr!r}")
            continue
        result.sent += int(values["sent"])
        result.send_errors += int(values["errors"])
        result.eagain += int(values["eagain"])
        result.sender_late_ticks += int(values["late_ticks"])
        result.sender_max_late_ms = max(result.sender_max_late_ms, values["max_late_us"] / 1000)
        result.sender_cpu_pct += 100 * (values["user_s"] + values["sys_s"]) / hold
        user, system = user + values["user_s"], system + values["sys_s"]
    result.notes.append(
        f"sender CPU {user:.1f} s user + {system:.1f} s system over a {hold:.1f} s hold; "
        f"{result.sender_late_ticks} sub-ticks started more than 20 ms late"
    )
    if perf is not None and (data := await perf) is not None:
        result.profile_md += ["", f"### perf: server process at {result.calls} calls", ""]
        result.profile_md += [f"Data: `{data.name}` (bench/out/). Self time, kernel included."]
        result.profile_md += ["", "| % | object | symbol |", "| --- | --- | --- |"]
        for percent, dso, symbol in await profilers.perf_top(data):
            result.profile_md.append(f"| {percent:.1f} | {dso} | `{symbol}` |")
    return hold, (await profiler if profiler is not None else None)


async def wait_drained(args: argparse.Namespace, result: report.StepResult) -> None:
    """Wait (bounded) until the server has read everything queued on its RTP sockets."""
    start = time.monotonic()
    queued = probes.socket_queues(*args.rtp).queued_bytes
    result.end_backlog_kib = queued / 1024
    while queued and time.monotonic() - start < 60:
        await asyncio.sleep(0.2)
        queued = probes.socket_queues(*args.rtp).queued_bytes
    result.drain_s = time.monotonic() - start if result.end_backlog_kib else 0.0
    if queued:
        result.notes.append(f"{queued} bytes still queued on RTP sockets after 60 s")


async def run_step(calls: int, args: argparse.Namespace) -> report.StepResult:
    result = report.StepResult(calls=calls, hold_s=args.hold, senders=args.senders)
    before = probes.machine_cpu()
    await asyncio.sleep(3.0)  # what the rest of this shared machine is doing
    result.background_busy_pct = probes.machine_cpu().since(before)[0]
    data_dir = Path(tempfile.mkdtemp(prefix=f"callvault-bench-{calls}-"))
    server = Server(data_dir, args.rtp)
    try:
        server.start()
        client = await siprec_client.open_client(("127.0.0.1", server.sip_port))
        bench_calls = [client.new_call(i) for i in range(calls)]
        setup_profile = None
        if args.profile:
            seconds = max(1, min(60, int(calls / args.rate)))
            out = OUT / f"pyspy-setup-{calls}-{time.strftime('%Y%m%d-%H%M%S')}.txt"
            setup_profile = asyncio.create_task(profilers.pyspy(server.pid, out, 0.5, seconds))
        threads0, cpu_setup0 = (
            probes.thread_cpu_seconds(server.pid),
            probes.tree_cpu_seconds(server.pid),
        )
        began = time.monotonic()
        await siprec_client.paced(bench_calls, "invite", client, args.rate, args.window)
        result.setup_s = time.monotonic() - began
        result.setup_cpu_s = probes.cpu_delta(cpu_setup0, probes.tree_cpu_seconds(server.pid))
        if setup_profile is not None and (path := await setup_profile) is not None:
            thread_cpu = _thread_delta(threads0, probes.thread_cpu_seconds(server.pid))
            result.profile_md += report.profile_section(
                path, f"Server during set-up of {calls} calls", thread_cpu, calls, "call"
            )
        up = [c for c in bench_calls if c.status == 200 and len(c.ports) == 2 and all(c.ports)]
        result.answered = len(up)
        result.failed_setups = calls - len(up)
        waits = sorted(1000 * (c.answered_at - c.invited_at) for c in up if c.answered_at)
        if waits:
            result.setup_p50_ms = statistics.median(waits)
            result.setup_max_ms = waits[-1]
        statuses = sorted({c.status for c in bench_calls if c not in up}, key=str)
        if statuses:
            result.notes.append(f"{result.failed_setups} set-ups failed (status {statuses})")
        ports_file = data_dir / "ports.txt"
        ports_file.write_text("".join(f"{c.ports[0]}\n{c.ports[1]}\n" for c in up))
        result.streams = 2 * len(up)
        await asyncio.sleep(1.0)  # let the last sessions' start-up writes finish
        live = server.metrics().get("callvault_sessions_live")
        if live is not None and live != len(up):
            result.notes.append(f"callvault_sessions_live={live:.0f} before the hold")

        cpu0, machine0 = probes.tree_cpu_seconds(server.pid), probes.machine_cpu()
        udp0, queues0 = probes.udp_counters(), probes.socket_queues(*args.rtp)
        threads0 = probes.thread_cpu_seconds(server.pid)
        syscalls = profilers.SyscallCounter(server.pid, OUT / f"syscalls-{calls}.csv")
        if args.perf:
            await syscalls.start()
        hold, hold_profile = await run_senders(args, ports_file, server, result)
        cpu1, machine1 = probes.tree_cpu_seconds(server.pid), probes.machine_cpu()
        udp1 = probes.udp_counters()
        result.server_cpu_pct = 100 * probes.cpu_delta(cpu0, cpu1) / hold
        result.machine_busy_pct, result.steal_pct = machine1.since(machine0)
        result.rcvbuf_errors = udp1["RcvbufErrors"] - udp0["RcvbufErrors"]
        result.in_errors = udp1["InErrors"] - udp0["InErrors"]
        result.no_ports = udp1["NoPorts"] - udp0["NoPorts"]

        await wait_drained(args, result)
        # Per packet: the CPU of the hold and of the drain after it, for every packet.
        result.server_cpu_s = probes.cpu_delta(cpu0, probes.tree_cpu_seconds(server.pid))
        thread_cpu = _thread_delta(threads0, probes.thread_cpu_seconds(server.pid))
        main_cpu = thread_cpu.get(server.pid, 0.0)
        result.notes.append(
            f"server CPU over hold and drain: {result.server_cpu_s:.1f} s, of which the "
            f"event loop (main thread) {main_cpu:.1f} s, other threads "
            f"{sum(thread_cpu.values()) - main_cpu:.1f} s"
        )
        result.socket_drops = probes.socket_queues(*args.rtp).drops - queues0.drops
        if counts := await syscalls.stop():
            per_packet = ", ".join(
                f"{name} {count / max(1, result.sent):.2f}"
                for name, count in counts.items()
                if count
            )
            result.notes.append(f"server syscalls per packet sent (hold and drain): {per_packet}")

        await siprec_client.paced(up, "bye", client, args.rate, args.window)
        result.byes_ok = sum(c.bye_status == 200 for c in up)
        expected = round(args.hold * PACKETS_PER_SECOND)
        deadline = time.monotonic() + 120 + calls / 20
        stored = read_database(data_dir, expected)
        while stored["active"] and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            stored = read_database(data_dir, expected)
        if stored["active"]:
            result.notes.append(f"{stored['active']} segments still active")
        result.ended_segments = stored["ended"]
        result.received = stored["packets"]
        result.lost = stored["lost"]
        result.short_streams = stored["short"]
        if hold_profile is not None:
            result.profile_md += report.profile_section(
                hold_profile,
                f"Server during the hold, {calls} calls ({result.sent / hold:,.0f} packets/s)",
                thread_cpu,
                result.received,
            )
        if result.short_streams:
            result.notes.append(f"{result.short_streams} streams got fewer than {expected}")
        if client.stray or client.requests:
            result.notes.append(
                f"unexpected SIP: {client.stray} responses, requests {client.requests}"
            )
        if client.transport is not None:
            client.transport.close()
        return result
    finally:
        server.stop(grace=args.stop_grace)
        if args.keep_data:
            print(f"data kept in {data_dir}", file=sys.stderr)
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


def _thread_delta(before: dict[int, float], after: dict[int, float]) -> dict[int, float]:
    return {tid: cpu - before.get(tid, 0.0) for tid, cpu in after.items()}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", default="100,500,1000,2000", help="comma-separated steps")
    parser.add_argument("--hold", type=float, default=60.0, help="seconds of media per step")
    parser.add_argument("--rate", type=float, default=200.0, help="call set-ups (and BYEs)/s")
    parser.add_argument("--window", type=int, default=50, help="most set-ups outstanding")
    parser.add_argument("--senders", type=int, default=1, help="C sender processes")
    parser.add_argument("--slots", type=int, default=20, help="sub-ticks per 20 ms period")
    parser.add_argument("--rtp-ports", default="10000-19999", help="server RTP range")
    parser.add_argument("--profile", type=int, default=0, help="py-spy seconds per step")
    parser.add_argument("--perf", type=int, default=0, help="perf record seconds per step")
    parser.add_argument("--stop-grace", type=float, default=5.0, help="seconds after SIGTERM")
    parser.add_argument("--keep-data", action="store_true", help="keep each step's data dir")
    parser.add_argument("--json", action="store_true", help="also write the results as JSON")
    args = parser.parse_args(argv)
    args.calls = [int(n) for n in args.calls.split(",") if n.strip()]
    low, _, high = args.rtp_ports.partition("-")
    args.rtp = (int(low), int(high))
    if max(args.calls) * 4 > args.rtp[1] - args.rtp[0] + 1:
        parser.error(f"--rtp-ports {args.rtp_ports} is too small for {max(args.calls)} calls")
    if not 1 <= args.senders <= 16 or args.hold <= 0 or args.rate <= 0:
        parser.error("need 1..16 senders, a positive hold and rate")
    return args


def render(results: list[report.StepResult], args: argparse.Namespace, command: str) -> str:
    lines = [
        f"# callvault load benchmark, {time.strftime('%Y-%m-%d %H:%M %Z')}",
        "",
        f"Machine: {report.machine()}. Generator on the same machine.",
        f"Command: `{command}`",
        f"Two-stream PCMU calls, 50 packets/s per stream, {args.hold:g} s hold, "
        f"{args.senders} C sender process(es), set-up at {args.rate:g} calls/s.",
        "",
        report.main_table(results),
        "",
        report.detail_table(results),
        "",
    ]
    for r in results:
        for note in r.notes:
            lines.append(f"- {r.calls} calls: {note}")
    for r in results:
        lines += r.profile_md
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    build_sender()
    OUT.mkdir(parents=True, exist_ok=True)
    command = " ".join(["python", "bench/load.py", *(sys.argv[1:] if argv is None else argv)])
    results: list[report.StepResult] = []
    for calls in args.calls:
        print(f"step: {calls} calls, {args.hold:g} s hold ...", file=sys.stderr, flush=True)
        results.append(asyncio.run(run_step(calls, args)))
        print(report.main_table(results[-1:]), file=sys.stderr, flush=True)
    text = render(results, args, command)
    print(text)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (OUT / f"load-{stamp}.md").write_text(text)
    if args.json:
        (OUT / f"load-{stamp}.json").write_text(json.dumps([vars(r) for r in results], indent=2))
    print(f"written to {OUT / f'load-{stamp}.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
