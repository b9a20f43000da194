"""Process handles: the only place that starts, signals and measures child processes.

One ``subprocess.Popen`` per node (never fork, so Windows works the same), its stdout
and stderr appended to ``<log_dir>/<name>.out`` rather than a pipe (a pipe nobody reads
fills up and blocks the child). Nodes log to their own rotated ``<name>.log``; the
``.out`` keeps what the logger cannot catch (a crash before logging starts, a print on
the way out) and is capped: past ``OUT_MAX_BYTES`` it moves to ``<name>.out.1`` (one
generation kept), at each start and while the child runs. Each child gets its own process group / console group,
so a Ctrl+C in the launcher's terminal reaches only the launcher, which then stops the
fleet in order (slaves before masters) instead of every process at once.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import psutil

from utils.process import kill_tree

IS_WINDOWS = sys.platform == "win32"
OUT_MAX_BYTES = 2_000_000  # per <name>.out; one older generation in <name>.out.1


def rotate_out(path: Path, max_bytes: int = OUT_MAX_BYTES) -> bool:
    """Before a child opens ``path``: move it to ``<path>.1`` when it holds more than
    ``max_bytes`` (replacing the older one). True when it rotated."""
    try:
        if path.stat().st_size <= max_bytes:
            return False
        os.replace(path, path.with_name(path.name + ".1"))
        return True
    except OSError:  # missing, or held open elsewhere (Windows): leave it
        return False


@dataclass(frozen=True)
class ProcStats:
    pid: int
    cpu_percent: float | None
    rss_bytes: int | None


class ProcessHandle:
    """One running child. ``poll()`` returns the exit code once it is gone."""

    def __init__(self, name: str, argv: Sequence[str], *, log_path: Path, cwd: Path | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        rotate_out(log_path)
        self._log: IO[bytes] = open(log_path, "ab")
        self._log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(self.argv)}\n".encode())
        self._log.flush()
        kwargs: dict = {}
        if IS_WINDOWS:
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
        else:
            kwargs["start_new_session"] = True
        try:
            self.popen = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                          stderr=subprocess.STDOUT, cwd=str(cwd) if cwd else None,
                                          env=dict(env) if env is not None else None, **kwargs)
        except BaseException:
            self._log.close()
            raise
        self.pid = self.popen.pid
        self._ps: psutil.Process | None = None  # cached: cpu_percent needs the same object

    def poll(self) -> int | None:
        code = self.popen.poll()
        if code is not None and not self._log.closed:
            self._log.close()
        return code

    def request_stop(self) -> None:
        """Graceful request: CTRL_BREAK_EVENT on Windows (the node's SIGBREAK handler),
        SIGTERM elsewhere."""
        if self.popen.poll() is not None:
            return
        try:
            if IS_WINDOWS:
                os.kill(self.pid, signal.CTRL_BREAK_EVENT)
            else:
                self.popen.terminate()
        except OSError:
            pass

    def kill(self, timeout_s: float = 2.0) -> None:
        """Kill the whole process tree (what a hung or over-deadline node gets)."""
        if self.popen.poll() is None:
            kill_tree(self.pid, timeout_s=timeout_s)
        try:
            self.popen.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout_s)
        self.poll()

    def cap_output(self, max_bytes: int = OUT_MAX_BYTES) -> bool:
        """While the child runs: when its ``.out`` passed ``max_bytes``, copy it to
        ``<name>.out.1`` and empty it (the child keeps appending to the same handle; a
        few bytes written between the copy and the cut may be lost). True when it cut."""
        try:
            if self._log.closed or self.log_path.stat().st_size <= max_bytes:
                return False
            backup = self.log_path.with_name(self.log_path.name + ".1")
            with open(self.log_path, "rb") as src, open(backup, "wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
            self._log.truncate(0)
            self._log.seek(0)  # Windows: the child shares this handle's file pointer
            self._log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} output past {max_bytes} bytes: "
                            f"the earlier part is in {backup.name}\n".encode())
            self._log.flush()
            return True
        except OSError:
            return False

    def stats(self) -> ProcStats:
        """CPU % since the previous call and RSS, from one cached psutil.Process."""
        try:
            if self._ps is None:
                self._ps = psutil.Process(self.pid)
                self._ps.cpu_percent(None)  # prime: the first reading is always 0.0
                return ProcStats(self.pid, None, self._ps.memory_info().rss)
            with self._ps.oneshot():
                return ProcStats(self.pid, round(self._ps.cpu_percent(None), 1), self._ps.memory_info().rss)
        except psutil.Error:
            return ProcStats(self.pid, None, None)
