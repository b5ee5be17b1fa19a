"""Who is writing: a token naming this host, process id and process start time.

Pins, temp files and checkout staging folders carry their writer's token in their
names, so that ``gc`` can tell the leftovers of a killed writer (remove them) from
the work of a live one (never touch it, whatever the grace period). The start time
tells a reused process id from the original process; a token from another host
cannot be checked from here (``alive`` says None), and only the grace period
protects it.
"""

from __future__ import annotations

import hashlib
import os
import socket

__all__ = ["current", "alive", "parse"]

_cache: tuple[int, str] | None = None


def _host_id() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), '0' where unknown, None if no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    except OSError:
        return "0"
    # The command name (field 2) may hold spaces and ')': fields are counted after the last ')'.
    fields = data[data.rfind(b")") + 2:].split()
    if fields[:1] in ([b"Z"], [b"X"]):
        return None  # a zombie has finished; only its exit status is left
    try:
        return fields[19].decode()  # field 22 of the whole line
    except IndexError:
        return "0"


def current() -> str:
    """``HOST.PID.START`` of this process (recomputed after a fork)."""
    global _cache
    pid = os.getpid()
    if _cache is None or _cache[0] != pid:
        start = _start_time(pid) if os.path.isdir("/proc/self") else "0"
        _cache = (pid, f"{_host_id()}.{pid}.{start or '0'}")
    return _cache[1]


def parse(token: str) -> tuple[str, int, str] | None:
    parts = token.split(".")
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1]), parts[2]


def alive(token: str) -> bool | None:
    """True if the writer named by ``token`` still runs, False if it is gone, None if it cannot be told
    (another host, or not a token)."""
    p = parse(token)
    if p is None or p[0] != _host_id():
        return None
    _host, pid, start = p
    if os.path.isdir("/proc/self"):
        now = _start_time(pid)
        if now is None:
            return False
        return start == "0" or now == "0" or now == start
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
