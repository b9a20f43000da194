"""Process helpers that work the same on Windows and POSIX."""
from __future__ import annotations

import signal
import threading
from collections.abc import Callable

import psutil


def watch_parent(parent_pid: int | None, on_orphaned: Callable[[], None], *, interval_s: float = 1.0) -> threading.Thread | None:
    """Call ``on_orphaned`` once when ``parent_pid`` is gone.

    A node started by the launcher must never trade unsupervised: if the launcher dies
    (even by kill -9, where no signal reaches the children), the node stops by itself.
    Polls with psutil because Windows has no PR_SET_PDEATHSIG.
    """
    if not parent_pid:
        return None
    try:
        parent = psutil.Process(parent_pid)
        created = parent.create_time()
    except psutil.Error:
        on_orphaned()
        return None

    def alive() -> bool:
        try:
            # pid reuse: a different process with the same pid is not our parent
            return parent.is_running() and parent.create_time() == created and parent.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    def loop() -> None:
        stop = threading.Event()
        while not stop.wait(interval_s):
            if not alive():
                on_orphaned()
                return

    thread = threading.Thread(target=loop, name="parent-watchdog", daemon=True)
    thread.start()
    return thread


def install_stop_handlers(on_stop: Callable[[], None]) -> None:
    """Route SIGINT, SIGTERM and (Windows) SIGBREAK to ``on_stop`` for a graceful exit."""
    names = ["SIGINT", "SIGTERM", "SIGBREAK"]
    for name in names:
        sig = getattr(signal, name, None)
        if sig is None:
            continue
        try:
            signal.signal(sig, lambda _signum, _frame: on_stop())
        except (ValueError, OSError):  # not the main thread, or unsupported on this platform
            pass


def kill_tree(pid: int, *, timeout_s: float = 3.0) -> list[int]:
    """Terminate a process and all its descendants; kill what survives ``timeout_s``.

    Returns the pids that had to be force-killed. Safe if the process is already gone.
    """
    try:
        root = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return []
    procs = root.children(recursive=True) + [root]
    for proc in procs:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            pass
    _gone, alive = psutil.wait_procs(procs, timeout=timeout_s)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=timeout_s)
    return [p.pid for p in alive]
