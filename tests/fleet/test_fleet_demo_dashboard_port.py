"""A second demo whose dashboard port is taken serves its page elsewhere and says so."""
from __future__ import annotations

import dataclasses
import os
import socket

import launcher
from config import settings


def test_busy_dashboard_port_moves_and_is_announced(monkeypatch):
    monkeypatch.delenv("COPYHUB_DASHBOARD_PORT", raising=False)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        taken = busy.getsockname()[1]
        cfg = dataclasses.replace(settings, DASHBOARD_HOST="127.0.0.1", DASHBOARD_PORT=taken)
        notes: list[str] = []
        moved = launcher.demo_dashboard_port(cfg, notes)
        assert moved.DASHBOARD_PORT != taken
        assert os.environ["COPYHUB_DASHBOARD_PORT"] == str(moved.DASHBOARD_PORT)  # the monitor inherits it
        assert notes and str(taken) in notes[0] and str(moved.DASHBOARD_PORT) in notes[0]
    monkeypatch.delenv("COPYHUB_DASHBOARD_PORT", raising=False)


def test_free_dashboard_port_is_kept():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    cfg = dataclasses.replace(settings, DASHBOARD_HOST="127.0.0.1", DASHBOARD_PORT=free)
    notes: list[str] = []
    assert launcher.demo_dashboard_port(cfg, notes) is cfg and notes == []
