"""Integration fixtures: run folders under a tmp runs root, the demo Flask app's
test client, and real forking RQ workers on the session's private Redis."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from redisprep._demo.app import create_app
from redisprep._demo.runs import create_sample_run
from support.integration import QUEUE, Workers


@pytest.fixture
def runs_root(tmp_path: Path) -> str:
    root = tmp_path / "runs"
    root.mkdir()
    return str(root)


@pytest.fixture
def workers(redis_info: Any, runs_root: str) -> Iterator[Workers]:
    w = Workers(redis_info.url, runs_root)
    try:
        yield w
    finally:
        w.cleanup()


@pytest.fixture
def client(redis_info: Any, runs_root: str) -> Any:
    app = create_app(runs_root, redis_info.url, QUEUE)
    return app.test_client()


@pytest.fixture
def run(runs_root: str) -> str:
    """A sample run ``run-a`` (config ``dev_unit``) with every demo controller."""
    return create_sample_run(runs_root, "run-a")


@pytest.fixture
def other_run(runs_root: str) -> str:
    """Another run whose folder name starts like ``run-a`` (catches prefix globs)."""
    return create_sample_run(runs_root, "run-a-copy")
