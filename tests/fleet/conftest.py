"""Fixtures shared by the fleet tests."""
from __future__ import annotations

import pytest


@pytest.fixture
def run_launcher(tmp_path):
    """``start(accounts, sub=None, **kw)``: a LauncherRun (fleet_harness) in ``tmp_path`` (or
    its folder ``sub``), closed after the test."""
    from fleet_harness import LauncherRun

    runs = []

    def start(accounts, sub=None, **kw):
        folder = tmp_path if sub is None else tmp_path / sub
        folder.mkdir(exist_ok=True)
        run = LauncherRun(folder, accounts, **kw)
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.close()
