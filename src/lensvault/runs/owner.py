"""Who owns a running run, and whether that process still lives.

A run row is ``running`` until the process that created it (``lensvault run``'s
supervisor, or the script that called ``start_run``) finishes it. A process killed with
SIGKILL, or a machine that lost power, finishes nothing, so the row records its owner:
the host, the pid and the process's start time. A pid alone is not enough: pids are
reused, and a new process with the old pid would keep a dead run "running" forever. The
start time (Linux: the boot id plus the start tick in ``/proc/PID/stat``; elsewhere what
``ps -o lstart=`` prints) tells the original process from a later one.

Liveness can only be judged on the owner's own host; elsewhere it is ``unknown``.
"""

from __future__ import annotations

import os
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ALIVE", "DEAD", "UNKNOWN", "Owner", "owner_state", "process_started", "this_host", "this_process"]

ALIVE, DEAD, UNKNOWN = "alive", "dead", "unknown"


@dataclass(frozen=True)
class Owner:
    host: str | None
    pid: int | None
    started: str | None

    def describe(self) -> str:
        if self.pid is None:
            return "an unrecorded process"
        return f"pid {self.pid} on {self.host}"


def this_host() -> str:
    return socket.gethostname()


def this_process() -> Owner:
    pid = os.getpid()
    return Owner(this_host(), pid, process_started(pid))


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state letter, start tick) from /proc/PID/stat, or None when there is no such process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes().decode("ascii", "replace")
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces or ')': split after the last one.
    fields = raw[raw.rfind(")") + 2:].split()
    return fields[0], fields[19]


def process_started(pid: int) -> str | None:
    """An opaque start-time token for ``pid`` (None if the process does not exist or cannot be read)."""
    if Path("/proc/self/stat").exists():
        stat = _proc_stat(pid)
        if stat is None:
            return None
        return f"{_boot_id() or 'boot'}/{stat[1]}"
    try:
        out = subprocess.run(["ps", "-o", "lstart=", "-p", str(pid)], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    text = " ".join(out.stdout.split())
    return f"ps/{text}" if out.returncode == 0 and text else None


def _exists(pid: int) -> bool:
    if Path("/proc/self/stat").exists():
        stat = _proc_stat(pid)
        # A zombie has ended; only its parent has not collected its exit status yet.
        return stat is not None and stat[0] not in ("Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def owner_state(owner: Owner) -> str:
    """ALIVE, DEAD, or UNKNOWN (another host, or an owner that was never recorded)."""
    if owner.host is None or owner.pid is None or owner.host != this_host():
        return UNKNOWN
    if not _exists(owner.pid):
        return DEAD
    if owner.started is None:
        return ALIVE  # recorded without a start time: a live pid is all we can go by
    now = process_started(owner.pid)
    if now is None:
        return DEAD  # ended between the two reads
    if now != owner.started:
        return DEAD  # the pid was reused by a later process (or the machine rebooted)
    return ALIVE
