"""Processes of a benchmark run, read from /proc (no psutil here): which ones, and what they cost."""

import os
import subprocess
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _pgrep(*args: str) -> list[int]:
    return [int(p) for p in subprocess.run(["pgrep", *args], capture_output=True, text=True).stdout.split()]


def tree(pid: int) -> list[int]:
    """``pid`` and every process below it (a server and its workers)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(_pgrep("-P", str(current)))
    return found


def named(name: str) -> list[int]:
    """Processes whose command name is exactly ``name`` (``mariadbd``, ``redis-server``)."""
    return _pgrep("-x", name)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time ``pids`` have used so far (processes that are gone count 0)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICKS


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and everything below it (Uvicorn workers), in MiB."""
    total = 0
    for p in tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024
