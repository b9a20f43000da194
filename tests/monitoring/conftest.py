"""Fixture for the guardian tests: see monitor_kit.py."""
from __future__ import annotations

import pytest

from tests.monitoring.monitor_kit import Env


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path)
    yield e
    e.store.close()
