"""The load benchmark's results: one ``StepResult`` per load step, printed as markdown.

``main_table`` is the table the issue asks for (packets sent, received, lost, server
CPU, kernel drops); ``detail_table`` holds what explains it (set-up, the receive backlog
the server built up, how late the sender was, the rest of the machine). ``machine()``
describes the box the numbers come from, and ``profile_section`` turns a py-spy raw
profile into the few functions where the server's time goes.
"""

from __future__ import annotations

import os
import platform
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class StepResult:
    calls: int
    hold_s: float
    senders: int
    answered: int = 0
    failed_setups: int = 0
    setup_p50_ms: float = 0.0
    setup_max_ms: float = 0.0
    setup_s: float = 0.0
    streams: int = 0
    sent: int = 0
    send_errors: int = 0
    eagain: int = 0
    sender_max_late_ms: float = 0.0
    sender_late_ticks: int = 0
    sender_cpu_pct: float = 0.0
    received: int = 0
    lost: int = 0
    short_streams: int = 0
    server_cpu_pct: float = 0.0
    server_cpu_s: float = 0.0
    machine_busy_pct: float = 0.0
    steal_pct: float = 0.0
    max_backlog_kib: float = 0.0
    end_backlog_kib: float = 0.0
    drain_s: float = 0.0
    socket_drops: int = 0
    rcvbuf_errors: int = 0
    in_errors: int = 0
    no_ports: int = 0
    setup_cpu_s: float = 0.0
    background_busy_pct: float = 0.0
    byes_ok: int = 0
    ended_segments: int = 0
    notes: list[str] = field(default_factory=list)
    profile_md: list[str] = field(default_factory=list)

    @property
    def missing(self) -> int:
        return self.sent - self.received

    @property
    def us_per_packet(self) -> float:
        """Server CPU per packet received (hold and drain; set-up and BYE excluded)."""
        return 1e6 * self.server_cpu_s / self.received if self.received else 0.0

    @property
    def loss_pct(self) -> float:
        return 100.0 * self.missing / self.sent if self.sent else 0.0


def _row(cells: list[object]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def main_table(results: list[StepResult]) -> str:
    head = [
        "calls",
        "streams",
        "packets sent",
        "received",
        "lost (RTP stats)",
        "missing (sent - received)",
        "loss %",
        "server CPU (% of a core)",
        "UDP drops on server sockets",
        "UDP RcvbufErrors (machine)",
    ]
    lines = [_row(head), _row(["---"] * len(head))]
    for r in results:
        lines.append(
            _row(
                [
                    f"{r.calls:,}" + ("" if r.answered == r.calls else f" ({r.answered:,} up)"),
                    f"{r.streams:,}",
                    f"{r.sent:,}",
                    f"{r.received:,}",
                    f"{r.lost:,}",
                    f"{r.missing:,}",
                    f"{r.loss_pct:.3f}",
                    f"{r.server_cpu_pct:.0f}",
                    f"{r.socket_drops:,}",
                    f"{r.rcvbuf_errors:,}",
                ]
            )
        )
    return "\n".join(lines)


def detail_table(results: list[StepResult]) -> str:
    head = [
        "calls",
        "packets/s",
        "set-up calls/s",
        "set-up p50 / max (ms)",
        "server CPU ms/set-up",
        "server CPU µs/packet",
        "sender CPU (% of a core)",
        "sender max late (ms)",
        "machine busy (% of all cores)",
        "others during hold (% of a core)",
        "busy before step (%)",
        "max RTP backlog (KiB)",
        "backlog at end (KiB)",
        "drain (s)",
        "send errors / EAGAIN",
        "BYE 200 / segments ended",
    ]
    lines = [_row(head), _row(["---"] * len(head))]
    for r in results:
        lines.append(
            _row(
                [
                    f"{r.calls:,}",
                    f"{r.sent / r.hold_s:,.0f}" if r.hold_s else "0",
                    f"{r.answered / r.setup_s:.0f}" if r.setup_s else "-",
                    f"{r.setup_p50_ms:.0f} / {r.setup_max_ms:.0f}",
                    f"{1000 * r.setup_cpu_s / r.answered:.1f}" if r.answered else "-",
                    f"{r.us_per_packet:.1f}",
                    f"{r.sender_cpu_pct:.0f} ({r.senders} proc)",
                    f"{r.sender_max_late_ms:.1f}",
                    f"{r.machine_busy_pct:.0f}",
                    f"{r.machine_busy_pct - r.server_cpu_pct - r.sender_cpu_pct:.0f}",
                    f"{r.background_busy_pct:.0f}",
                    f"{r.max_backlog_kib:,.0f}",
                    f"{r.end_backlog_kib:,.0f}",
                    f"{r.drain_s:.1f}",
                    f"{r.send_errors} / {r.eagain}",
                    f"{r.byes_ok:,} / {r.ended_segments:,}",
                ]
            )
        )
    return "\n".join(lines)


def machine() -> str:
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (
        f"{os.cpu_count()} cores ({model}), Linux {platform.release()}, "
        f"Python {platform.python_version()}"
    )


@dataclass(frozen=True, slots=True)
class Hotspot:
    function: str
    self_share: float  # of the thread's samples
    inclusive_share: float


def read_profile(raw_profile: Path) -> dict[tuple[int, str], Counter[tuple[str, ...]]]:
    """py-spy ``--format raw --threads``: stacks (root first) and counts per (tid, name).

    Each line is ``thread (tid): name;frame;...;leaf count`` with a frame being
    ``function (file:line)``; the line number is dropped so one function adds up.
    """
    threads: dict[tuple[int, str], Counter[tuple[str, ...]]] = {}
    for line in raw_profile.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        first, *frames = stack.split(";")
        if first.startswith("thread ("):
            tid_text, _, name = first.removeprefix("thread (").partition("): ")
            thread = (int(tid_text, 0), name)
        else:
            thread, frames = (0, "?"), [first, *frames]
        key = tuple(_function(frame) for frame in frames)
        threads.setdefault(thread, Counter())[key] += int(count_text)
    return threads


def hotspots(stacks: Counter[tuple[str, ...]], limit: int = 12) -> list[Hotspot]:
    """Functions by self time (a C call made by a Python function counts as its own)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = sum(stacks.values())
    for frames, count in stacks.items():
        if not frames:
            continue
        own[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
    if not total:
        return []
    return [
        Hotspot(name, count / total, inclusive[name] / total)
        for name, count in own.most_common(limit)
    ]


def profile_section(
    raw_profile: Path,
    title: str,
    thread_cpu: dict[int, float],
    count: int,
    unit: str = "packet",
) -> list[str]:
    """Markdown for one profile: per thread, hot functions as % and µs per ``unit``.

    ``thread_cpu`` maps a thread id to its CPU seconds over the window in which ``count``
    units (packets, calls) were handled; a function's µs per unit is its share of the
    thread's (non-idle) samples times the thread's CPU per unit.
    """
    lines = ["", f"### {title}", "", f"Raw profile: `{raw_profile.name}` (bench/out/)."]
    profile = read_profile(raw_profile)
    for (tid, thread), stacks in sorted(profile.items(), key=lambda t: -t[1].total()):
        cpu = thread_cpu.get(tid)
        per_packet = 1e6 * cpu / count if cpu is not None and count else None
        head = f"{thread}: {stacks.total()} samples"
        if cpu is not None:
            head += f", {cpu:.1f} CPU s"
        if per_packet is not None:
            head += f", {per_packet:.2f} µs CPU per {unit}"
        lines += [
            "",
            head,
            "",
            f"| self % | incl % | µs/{unit} | function |",
            "| --- | --- | --- | --- |",
        ]
        for spot in hotspots(stacks):
            us = f"{spot.self_share * per_packet:.2f}" if per_packet is not None else ""
            lines.append(
                f"| {100 * spot.self_share:.1f} | {100 * spot.inclusive_share:.1f} | {us} "
                f"| `{spot.function}` |"
            )
    return lines


def _function(frame: str) -> str:
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    short = "/".join(path.split("/")[-2:]) if path else ""
    return f"{name} ({short})" if short else name
