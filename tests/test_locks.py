"""Stale Snakemake locks: removed only when their owner, on this host, is gone."""

import json
import os
import socket
import subprocess

from dstorm.locks import record_owner, remove_stale_locks


def _locks(folder, index, owner):
    folder.mkdir(parents=True, exist_ok=True)
    for kind in ("input", "output"):
        (folder / f"{index}.{kind}.lock").write_text("results/x\n")
    if owner is not None:
        (folder / f"{index}.owner.json").write_text(json.dumps(owner))


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_only_locks_of_a_finished_process_of_this_host_are_removed(tmp_path):
    locks = tmp_path / "locks"
    host = socket.gethostname()
    _locks(locks, 0, None)
    record_owner([locks / "0.input.lock", locks / "0.output.lock"])  # this (live) process
    _locks(locks, 1, {"host": host, "pid": _dead_pid(), "started": "1"})  # gone
    _locks(locks, 2, {"host": "another-node", "pid": _dead_pid(), "started": "1"})  # cannot be checked
    _locks(locks, 3, None)  # no owner record (a run between locking and onstart, or an older version)
    own = json.loads((locks / "0.owner.json").read_text())
    _locks(locks, 4, {**own, "started": "0"})  # the pid was reused by another process
    removed = remove_stale_locks(locks)
    assert len(removed) == 2 and "process" in removed[0] and "no longer running" in removed[0]
    left = sorted(p.name for p in locks.iterdir())
    assert left == sorted(
        [f"{i}.{k}.lock" for i in (0, 2, 3) for k in ("input", "output")] + ["0.owner.json", "2.owner.json"]
    )
    assert own["pid"] == os.getpid() and own["host"] == host
    assert remove_stale_locks(tmp_path / "absent") == []
