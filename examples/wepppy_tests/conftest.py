"""The example app's own settings and client; everything else comes from the
redisprep pytest plugin (redisprep_url, prep_run, rq_worker, invalidations)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import wepppy_app
from redisprep.testing import PrepRun, RqWorker


@pytest.fixture(autouse=True)
def app_settings(redisprep_url: str, prep_run: PrepRun, monkeypatch: pytest.MonkeyPatch) -> None:
    """The app's Redis and runs root are the plugin's test server and run folder."""
    monkeypatch.setattr(wepppy_app, "REDIS_URL", redisprep_url)
    monkeypatch.setattr(wepppy_app, "RUNS_ROOT", str(Path(prep_run.wd).parent))


@pytest.fixture
def client(rq_worker: RqWorker) -> Any:
    return wepppy_app.create_app(rq_worker.queue).test_client()
