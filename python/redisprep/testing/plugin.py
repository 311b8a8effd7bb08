"""The pytest plugin (entry point ``pytest11: redisprep``): options, the
``redisprep_rules`` marker and the fixtures. Loading it starts nothing and adds
no work to tests that do not use its fixtures: the server starts at the first
test that asks for one (docs/TESTING.md)."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from . import factories, options
from .activate import MARKER, activated, events_on

if TYPE_CHECKING:
    from .events import InvalidationRecorder
    from .runs import PrepRun
    from .server import Server
    from .worker import RqWorker


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(path_or_dict): the rules file (or a rules dict) redisprep uses in this test",
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    outcome = yield
    if outcome.get_result().failed:
        item.stash[factories.FAILED] = True


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    kept = config.stash.get(factories.KEPT, [])
    if kept:
        terminalreporter.section("redisprep: kept after failures (--redisprep-keep)")
        for line in kept:
            terminalreporter.write_line(line)


#: The session's server: private (``--redisprep-server-exec``), or the running one
#: of ``--redisprep-url`` / ``$REDISPREP_TEST_URL`` (noproc). ``.url .port .version``.
redisprep_server = factories.server(noproc_from_options=True)


@pytest.fixture
def redisprep_url(
    redisprep_server: Server, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[str]:
    """The URL in force: redisprep is ``configure()``d to it (and to the rules of
    the ``redisprep_rules`` marker) for the test, and restored afterwards."""
    with activated(redisprep_server.url, request, tmp_path) as url:
        yield url


@pytest.fixture
def prep_run(
    redisprep_url: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[PrepRun]:
    """A fresh run folder under ``tmp_path`` with its prep hash; its keys removed after."""
    yield from factories.prep_run(request, tmp_path / "runs")


@pytest.fixture
def invalidations(redisprep_url: str) -> Iterator[InvalidationRecorder]:
    """Every invalidation during the test, from the events (on for the test only)."""
    from .. import _client, _redisprep
    from .events import InvalidationRecorder

    with events_on() as channel:
        client = _client.from_params(_redisprep.connection_params())
        recorder = InvalidationRecorder(client, channel)
        try:
            yield recorder
        finally:
            recorder.close()
            client.close()


@pytest.fixture
def rq_worker(redisprep_url: str) -> Iterator[RqWorker]:
    """A real forking RQ worker (in this process, ``redisprep.rq.preload()`` first)
    with a queue of its own on the test server: ``.queue``, ``.work()``."""
    from .worker import RqWorker

    worker = RqWorker(redisprep_url, options.RQ_DB)
    try:
        yield worker
    finally:
        worker.cleanup()
