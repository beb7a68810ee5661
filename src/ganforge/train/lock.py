"""One training at a time in a run directory: an advisory lock on ``RUN_DIR/.lock``.

Two trainings writing into one folder would interleave metrics.jsonl and overwrite each other's
checkpoints. ``train`` and ``train --resume`` hold an exclusive ``flock`` on the run's lock file
while they run; the operating system releases it when the process ends, however it ends, so a
killed run never leaves a stale lock behind. (Where fcntl is missing, e.g. on Windows, there is
no lock.)
"""

from __future__ import annotations

import os
from pathlib import Path

from ganforge.errors import GanforgeError

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX
    fcntl = None

LOCK_NAME = ".lock"


class RunLock:
    """``with RunLock(run_dir):`` holds the run directory's lock, or raises GanforgeError naming
    the process that holds it."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK_NAME
        self.fd: int | None = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = os.read(self.fd, 32).decode(errors="replace").strip() or "another process"
                os.close(self.fd)
                self.fd = None
                raise GanforgeError(f"{self.path.parent} is being trained by process {holder}; wait for it to "
                                    "finish (or stop it) or choose another --out") from None
        os.ftruncate(self.fd, 0)
        os.write(self.fd, str(os.getpid()).encode())
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing releases the flock
            self.fd = None
