import subprocess
import sys
import time

import psutil

from utils.process import kill_tree


def test_kill_tree_leaves_no_descendant():
    code = "import subprocess,sys,time; subprocess.Popen([sys.executable,'-c','import time; time.sleep(60)']); time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 10
    while not psutil.Process(proc.pid).children() and time.monotonic() < deadline:
        time.sleep(0.05)
    children = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
    assert children
    kill_tree(proc.pid, timeout_s=2)
    proc.wait(timeout=5)
    for pid in children:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_parent_watchdog_stops_an_orphan():
    # a parent that exits; its child watches it and must exit on its own
    child_code = (
        "import sys,time,os; sys.path.insert(0, sys.argv[1]);"
        "from utils.process import watch_parent;"
        "watch_parent(int(sys.argv[2]), lambda: os._exit(0), interval_s=0.1); time.sleep(30); os._exit(3)"
    )
    from tests.conftest import ROOT

    parent_code = (
        "import subprocess,sys,os,time;"
        f"p=subprocess.Popen([sys.executable,'-c',{child_code!r},{str(ROOT)!r},str(os.getpid())]);"
        "print(p.pid,flush=True); time.sleep(0.5)"
    )
    parent = subprocess.run([sys.executable, "-c", parent_code], capture_output=True, text=True, timeout=20)
    child_pid = int(parent.stdout.strip())
    deadline = time.monotonic() + 10
    while psutil.pid_exists(child_pid) and time.monotonic() < deadline:
        try:
            if psutil.Process(child_pid).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.1)
    assert not psutil.pid_exists(child_pid) or psutil.Process(child_pid).status() == psutil.STATUS_ZOMBIE
