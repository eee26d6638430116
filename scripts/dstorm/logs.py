"""Logging for entry scripts: everything goes to the rule's log file (and to stderr when interactive)."""

from __future__ import annotations

import logging
import os
import socket
import sys
from pathlib import Path

from dstorm.errors import InputError

__all__ = ["setup_logging"]


def setup_logging(log_path: str | None = None, level: int = logging.INFO) -> None:
    """Send the library's log records to ``log_path`` (created with its folder) and to a terminal."""
    handlers: list[logging.Handler] = []
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w", encoding="utf-8"))
    if sys.stderr.isatty() or not log_path:
        handlers.append(logging.StreamHandler(sys.stderr))
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    logging.captureWarnings(True)
    # Lightning, imported before this runs, gives its loggers a stream handler of their own (they would
    # print to the terminal, not to the log): send their records to the root handlers above instead
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        third_party = logging.getLogger(name)
        third_party.handlers.clear()
        third_party.propagate = True
    if os.environ.get("SLURM_JOB_ID"):  # say where the job ran: the id ties this log to sacct/squeue
        logging.getLogger("dstorm").info(
            "SLURM job %s on %s (partition %s, CPUs %s, GPUs %s)", os.environ["SLURM_JOB_ID"], socket.gethostname(),
            os.environ.get("SLURM_JOB_PARTITION", "?"), os.environ.get("SLURM_CPUS_PER_TASK", "?"),
            os.environ.get("CUDA_VISIBLE_DEVICES", "none"),
        )  # fmt: skip

    def log_uncaught(exc_type, exc, tb):
        to_stderr = not any(isinstance(h, logging.StreamHandler) and h.stream is sys.stderr for h in handlers)
        if issubclass(exc_type, InputError):  # bad input: its one-line message says what to fix; no traceback
            logging.getLogger("dstorm").error("failed: %s", exc)
            if to_stderr:
                print(f"Error: {exc}", file=sys.stderr)
            return
        logging.getLogger("dstorm").error("failed: %s", exc, exc_info=(exc_type, exc, tb))
        if to_stderr:
            sys.__excepthook__(exc_type, exc, tb)

    sys.excepthook = log_uncaught
