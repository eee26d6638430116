"""Stale Snakemake locks: a rerun after ``kill -9`` works as written, without ``--unlock``.

Snakemake locks the working directory (``.snakemake/locks/<i>.input.lock``, ``<i>.output.lock``) and removes
the locks when it exits; a process killed with SIGKILL, or a node that went down, leaves them behind, and
the next run stops with a LockException. Unlocking automatically whenever that happens would let two runs
write the same files at once, so only locks that are provably stale are removed: when a run starts
(``onstart``, after Snakemake has taken its locks) it writes ``<i>.owner.json`` beside them with its host, its
process id and that process's start time; the next run removes a lock whose owner, on this same host, is
no longer running (the start time guards against a reused pid). Locks of a live process, of another host
(a shared file system), or without an owner record are left alone: Snakemake then says to run
``snakemake --unlock`` once no other run is active.

Standard library only (the Snakemake process imports it); Linux's /proc gives the start time.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from pathlib import Path

__all__ = ["record_owner", "remove_stale_locks"]

log = logging.getLogger(__name__)


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat field 22), None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _alive(pid: int, started: str | None) -> bool:
    if Path("/proc").is_dir():
        now = _start_time(pid)
        return now is not None and (started is None or now == started)
    try:  # no /proc (macOS): the pid alone
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def record_owner(lock_files, pid: int | None = None) -> list[Path]:
    """Write ``<i>.owner.json`` beside each of this run's lock files (``<i>.input.lock`` ...)."""
    pid = os.getpid() if pid is None else pid
    owner = {"host": socket.gethostname(), "pid": pid, "started": _start_time(pid)}
    lock_files = [Path(f) for f in lock_files]
    written = []
    for index in sorted({f.name.split(".")[0] for f in lock_files}):
        path = lock_files[0].parent / f"{index}.owner.json"
        path.write_text(json.dumps(owner) + "\n")
        written.append(path)
    return written


def remove_stale_locks(lock_dir: str | os.PathLike = ".snakemake/locks") -> list[str]:
    """Remove the locks whose owner was a process of this host that is no longer running; returns what was
    removed, one description per lock (the caller reports them)."""
    lock_dir = Path(lock_dir)
    removed = []
    for owner_file in sorted(lock_dir.glob("*.owner.json")) if lock_dir.is_dir() else []:
        try:
            owner = json.loads(owner_file.read_text())
            host, pid, started = owner["host"], int(owner["pid"]), owner.get("started")
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if host != socket.gethostname() or _alive(pid, started):
            continue
        index = owner_file.name.split(".")[0]
        for kind in ("input", "output"):
            (lock_dir / f"{index}.{kind}.lock").unlink(missing_ok=True)
        owner_file.unlink(missing_ok=True)
        removed.append(
            f"removed the stale lock {lock_dir}/{index}.*.lock of snakemake process {pid} on {host}, which is no "
            "longer running"
        )
    return removed
