"""What is specific to this repository's tests, on top of the package's pytest
plugin (redisprep.testing: the session server, ``--redisprep-server-exec``,
``--redisprep-url`` / ``$REDISPREP_TEST_URL``): the session server flushed before
every test that may use Redis, with redisprep configured for it; raw clients;
extra servers for fault tests; the cluster layout.

Tests marked ``no_redis`` (the rules, the analyser, the dump format, the checks
grammar) start no server and need none: ``pytest -m no_redis``."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

sys.path.insert(0, str(Path(__file__).parent))

import redisprep
from redisprep.testing import Server, options
from support.cluster import LocalCluster
from support.layouts import Layout
from support.redis_server import RedisServer

pytest_plugins = ["pytester"]  # tests/test_testing_plugin.py runs inner sessions


def pytest_configure(config: pytest.Config) -> None:
    # every server the tests start runs the plugin's executable (one place: the option)
    RedisServer.executable = options.server_exec(config)


CLOSED_PORT_URL = "redis://127.0.0.1:1/0"


@pytest.fixture(scope="session")
def redis_info(redisprep_server: Server) -> Server:
    """The plugin's session server (``.url``, ``.client(db)``); REDIS_URL names it for
    the subprocesses tests start."""
    os.environ["REDIS_URL"] = redisprep_server.url
    redisprep.configure(redisprep_server.url)
    return redisprep_server


@pytest.fixture(autouse=True)
def _clean_redis(request: pytest.FixtureRequest) -> None:
    """Every test not marked ``no_redis``: an empty session server, redisprep on it.
    A ``no_redis`` test gets none: redisprep points at a closed port, so a test that
    does use Redis fails loudly (and never reaches a shared server on 6379)."""
    if request.node.get_closest_marker("no_redis") is not None:
        redisprep.configure(CLOSED_PORT_URL)
        redisprep.set_rules_path(None)
        return
    info: Server = request.getfixturevalue("redis_info")
    os.environ["REDIS_URL"] = info.url
    redisprep.configure(info.url)
    redisprep.set_rules_path(None)
    info.client(0).flushall()


@pytest.fixture
def r0(redis_info: Server) -> redis.Redis[str]:
    client: redis.Redis[str] = redis_info.client(0)
    return client


@pytest.fixture
def r13(redis_info: Server) -> redis.Redis[str]:
    client: redis.Redis[str] = redis_info.client(13)
    return client


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    d = tmp_path / "runs" / "ab" / "abc-def"
    d.mkdir(parents=True)
    return d


@pytest.fixture
def make_server() -> Iterator[type[RedisServer]]:
    """Start extra private servers (fault tests); all are cleaned up after the test."""
    started: list[RedisServer] = []

    class Tracked(RedisServer):
        def __init__(self, *a: object, **kw: object) -> None:
            super().__init__(*a, **kw)  # type: ignore[arg-type]
            started.append(self)

    yield Tracked
    for s in started:
        s.cleanup()


@pytest.fixture
def private_server(make_server: type[RedisServer]) -> Iterator[RedisServer]:
    """A private server of this test's own with redisprep configured for it, so
    command counts and round trips are exact; the session server afterwards."""
    server = make_server().start()
    redisprep.configure(server.url)
    try:
        yield server
    finally:
        redisprep.configure(os.environ["REDIS_URL"])


# -- layouts: the drop-in and invalidation suites run on both (tests/support/layouts.py)


@pytest.fixture(scope="session")
def local_cluster() -> Iterator[LocalCluster]:
    """The session's 3-master + 3-replica Redis Cluster, started at first use
    (session fixtures are lazy: sessions without cluster tests never start it)."""
    cluster = LocalCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.cleanup()


@pytest.fixture(params=["standalone", pytest.param("cluster", marks=pytest.mark.slow)])
def layout(request: pytest.FixtureRequest, redis_info: Server) -> Iterator[Layout]:
    """redisprep configured on one layout (empty), restored to the session server after."""
    if request.param == "cluster":
        cluster: LocalCluster = request.getfixturevalue("local_cluster")
        lay = Layout("cluster", cluster.url, cluster)
    else:
        lay = Layout("standalone", redis_info.url)
    lay.activate()
    try:
        yield lay
    finally:
        redisprep.configure(redis_info.url)
        lay.close()
