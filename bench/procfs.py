"""What the benchmarks read from /proc (Linux): a process's CPU time and its memory figures."""
from __future__ import annotations

import os


def cpu_seconds(pid: int | str) -> float:
    """User + system CPU seconds process ``pid`` has used; 0 for one that is gone (or without /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def status_kb(pid: int | str, *keys: str) -> tuple[int, ...] | None:
    """Fields of /proc/PID/status in kB (``self`` for this process; 0 for one the kernel does not give), or
    None for a process that is gone (or without /proc)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
    except OSError:
        return None
    return tuple(int(fields.get(k, "0 kB").split()[0]) for k in keys)
