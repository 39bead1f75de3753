"""What the load benchmark reads from the kernel: CPU time, UDP counters, socket queues.

All of it comes from /proc (Linux only) and is read, never changed:

* ``tree_cpu_seconds(pid)``: user + system CPU seconds of a process and every
  descendant (the server's finalize workers), from ``/proc/<pid>/stat``.
* ``thread_cpu_seconds(pid)``: the same per thread (the event loop is the main thread,
  the database writer another), from ``/proc/<pid>/task/<tid>/stat``.
* ``machine_cpu()``: the ``cpu`` line of ``/proc/stat`` (busy, idle, steal jiffies), to
  tell a saturated machine from an idle one; this box is shared.
* ``udp_counters()``: ``Udp:`` of ``/proc/net/snmp``. These are machine-wide (other
  programs count too); ``RcvbufErrors`` are datagrams dropped because a socket's receive
  buffer was full, ``NoPorts`` datagrams for a port nobody had open.
* ``socket_queues(lo, hi)``: per-socket receive queue and drop counter of every UDP
  socket bound to 127.0.0.1 on a port in [lo, hi] (``/proc/net/udp``): the server's own
  RTP sockets, so their drops are exactly the recorder's kernel-side loss, and their
  queued bytes show a server that falls behind before any packet is dropped.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
_LOOPBACK_HEX = "0100007F"


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces: split after its closing parenthesis.
    return text[text.rindex(")") + 2 :].split()


def descendants(pid: int) -> list[int]:
    """``pid`` and all its descendants (by parent pid), alive now."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(children.get(current, []))
    return out


def tree_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) per process of the tree rooted at ``pid``."""
    out: dict[int, float] = {}
    for member in descendants(pid):
        fields = _stat_fields(member)
        if fields is not None:
            # After the name: state is index 0, so utime/stime (fields 14/15) are 11/12.
            out[member] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU seconds per thread of one process (the main thread's id is ``pid``)."""
    out: dict[int, float] = {}
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                text = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
                fields = text[text.rindex(")") + 2 :].split()
                out[int(tid)] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds used between two ``tree_cpu_seconds`` readings (new processes count
    from zero; a process gone by ``after`` is not counted: none should exit mid-run)."""
    return sum(value - before.get(pid, 0.0) for pid, value in after.items())


@dataclass(frozen=True, slots=True)
class MachineCpu:
    busy: int
    idle: int
    steal: int

    def since(self, earlier: MachineCpu) -> tuple[float, float]:
        """(busy %, steal %) of all cores together (2 cores: up to 200 %)."""
        busy = self.busy - earlier.busy
        idle = self.idle - earlier.idle
        steal = self.steal - earlier.steal
        total = busy + idle
        cores = os.cpu_count() or 1
        if total <= 0:
            return 0.0, 0.0
        return 100.0 * cores * busy / total, 100.0 * cores * steal / total


def machine_cpu() -> MachineCpu:
    with Path("/proc/stat").open() as f:
        values = [int(v) for v in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (values + [0] * 8)[:8]
    return MachineCpu(user + nice + system + irq + softirq + steal, idle + iowait, steal)


def udp_counters() -> dict[str, int]:
    lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines()]
    names, values = [row for row in lines if row and row[0] == "Udp:"][:2]
    return {name: int(value) for name, value in zip(names[1:], values[1:], strict=True)}


@dataclass(frozen=True, slots=True)
class SocketQueues:
    sockets: int
    queued_bytes: int
    nonempty: int
    drops: int


def socket_queues(low: int, high: int) -> SocketQueues:
    """Receive queues and drops of UDP sockets on 127.0.0.1 ports low..high."""
    sockets = queued = nonempty = drops = 0
    with Path("/proc/net/udp").open() as f:
        next(f)
        for line in f:
            fields = line.split()
            address, _, port_hex = fields[1].partition(":")
            if address != _LOOPBACK_HEX:
                continue
            port = int(port_hex, 16)
            if not low <= port <= high:
                continue
            sockets += 1
            rx = int(fields[4].partition(":")[2], 16)
            queued += rx
            nonempty += rx > 0
            drops += int(fields[12])
    return SocketQueues(sockets, queued, nonempty, drops)
