import sys
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)


import pytest  # noqa: E402


@pytest.fixture
def env(tmp_path):
    """The monitor's app on a seeded store (dashboard_kit.make): (store, collector, client, published)."""
    from dashboard_kit import make
    from fastapi.testclient import TestClient

    store, collector, app, published = make(tmp_path)
    with TestClient(app, base_url="http://127.0.0.1:8080") as client:
        yield store, collector, client, published
    store.close()
