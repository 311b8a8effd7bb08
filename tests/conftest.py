"""Session fixtures: a private redis-server per test session (or REDIS_URL
when set), flushed before every test; redisprep configured to use it."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

sys.path.insert(0, str(Path(__file__).parent))

import redisprep
from support.cluster import LocalCluster
from support.layouts import Layout
from support.redis_server import RedisServer, server_from_env, url_with_db


class ServerInfo:
    def __init__(self, url: str, server: RedisServer | None) -> None:
        self.url = url
        self.server = server

    def client(self, db: int = 0) -> redis.Redis[str]:
        return redis.Redis.from_url(url_with_db(self.url, db), decode_responses=True)


@pytest.fixture(scope="session")
def redis_info() -> Iterator[ServerInfo]:
    url = server_from_env()
    server = None
    if url is None:
        server = RedisServer().start()
        url = server.url
    os.environ["REDIS_URL"] = url
    redisprep.configure(url)
    try:
        yield ServerInfo(url, server)
    finally:
        if server is not None:
            server.cleanup()


@pytest.fixture(autouse=True)
def _clean_redis(redis_info: ServerInfo) -> Iterator[None]:
    os.environ["REDIS_URL"] = redis_info.url
    redisprep.configure(redis_info.url)
    redisprep.set_rules_path(None)
    redis_info.client(0).flushall()
    yield


@pytest.fixture
def r0(redis_info: ServerInfo) -> redis.Redis[str]:
    return redis_info.client(0)


@pytest.fixture
def r13(redis_info: ServerInfo) -> redis.Redis[str]:
    return redis_info.client(13)


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
def layout(request: pytest.FixtureRequest, redis_info: ServerInfo) -> Iterator[Layout]:
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
