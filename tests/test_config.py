"""Configuration: where redisprep connects, in wepppy's order,
and a clear ``ConfigError`` for bad settings that leaves the settings in force
untouched. Every claim is checked by where the bytes land on real servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

import redisprep
from redisprep import ConfigError, RedisPrep, RedisPrepError
from support.cluster import LocalCluster
from support.envvars import clear_settings_env
from support.redis_server import RedisServer

SECRET = "s3cret-Pa55"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """A clean environment (restored, and redisprep re-pointed, by conftest after)."""
    clear_settings_env(monkeypatch)
    yield monkeypatch


@pytest.fixture
def two(make_server: type[RedisServer]) -> tuple[RedisServer, RedisServer]:
    return make_server().start(), make_server().start()


class Probe:
    """Writes through a fresh ``RedisPrep`` and tells where the hash landed."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.n = 0

    def write(self) -> str:
        self.n += 1
        run_id = f"probe-{self.n}"
        wd = self.tmp_path / run_id
        wd.mkdir()
        prep = RedisPrep.getInstance(str(wd))
        prep["configured"] = self.n
        # prep.redis follows the same settings (same server, same DB)
        assert prep.redis.hget(run_id, "timestamps:configured") == str(self.n)
        return run_id

    @staticmethod
    def where(run_id: str, servers: dict[str, RedisServer]) -> list[tuple[str, int]]:
        found = []
        for name, s in servers.items():
            for db in range(16):
                if s.client(db).exists(run_id):
                    found.append((name, db))
        return found


@pytest.fixture
def probe(tmp_path: Path) -> Probe:
    return Probe(tmp_path)


def test_resolution_order(
    env: pytest.MonkeyPatch, two: tuple[RedisServer, RedisServer], probe: Probe
) -> None:
    a, b = two
    servers = {"a": a, "b": b}

    def lands() -> list[tuple[str, int]]:
        return probe.where(probe.write(), servers)

    env.setenv("REDIS_HOST", "127.0.0.1")
    env.setenv("REDIS_PORT", str(b.port))
    redisprep.configure()
    assert lands() == [("b", 0)]  # REDIS_HOST / REDIS_PORT
    env.setenv("RQ_REDIS_URL", a.url)
    redisprep.configure()
    assert lands() == [("a", 0)]  # RQ_REDIS_URL beats host/port
    env.setenv("REDIS_URL", b.url)
    redisprep.configure()
    assert lands() == [("b", 0)]  # REDIS_URL beats RQ_REDIS_URL
    redisprep.configure(a.url)
    assert lands() == [("a", 0)]  # configure(url) beats the environment
    redisprep.configure()
    assert lands() == [("b", 0)]  # configure() goes back to the environment
    env.setenv("REDIS_URL", "redis://")  # no host: ignored, like wepppy
    env.delenv("RQ_REDIS_URL")
    redisprep.configure()
    assert lands() == [("b", 0)]
    assert redisprep.connection_info()["address"] == f"127.0.0.1:{b.port}"


@pytest.mark.parametrize(
    "url_db, prep_db_env, prep_db_arg, want",
    [
        ("/5", None, None, 0),  # the URL's DB is replaced by the prep DB
        ("/0?db=7", None, None, 0),
        ("/5", "3", None, 3),  # REDISPREP_PREP_DB
        ("/5", "3", 4, 4),  # configure(prep_db=...) wins
    ],
)
def test_prep_db_ignores_the_url_db(
    env: pytest.MonkeyPatch,
    two: tuple[RedisServer, RedisServer],
    probe: Probe,
    url_db: str,
    prep_db_env: str | None,
    prep_db_arg: int | None,
    want: int,
) -> None:
    a, _ = two
    if prep_db_env is not None:
        env.setenv("REDISPREP_PREP_DB", prep_db_env)
    env.setenv("REDIS_URL", f"redis://127.0.0.1:{a.port}{url_db}")
    redisprep.configure(prep_db=prep_db_arg)
    assert probe.where(probe.write(), {"a": a}) == [("a", want)]
    assert redisprep.connection_info()["prep_db"] == want
    # the same through configure(url) with the DB in the URL
    redisprep.configure(f"redis://127.0.0.1:{a.port}{url_db}", prep_db=prep_db_arg)
    assert probe.where(probe.write(), {"a": a}) == [("a", want)]


def test_unix_socket_url(
    env: pytest.MonkeyPatch, make_server: type[RedisServer], tmp_path: Path, probe: Probe
) -> None:
    sock = tmp_path / "redis.sock"
    server = make_server(extra_args=["--unixsocket", str(sock), "--unixsocketperm", "700"]).start()
    env.setenv("REDIS_URL", f"unix://{sock}?db=9")
    redisprep.configure()
    info = redisprep.connection_info()
    assert info["address"] == f"unix:{sock}" and info["prep_db"] == 0
    assert probe.where(probe.write(), {"s": server}) == [("s", 0)]
    unix_clients = [c for c in server.client().client_list() if c["addr"].startswith("/")]
    assert len(unix_clients) >= 2  # ours and prep.redis came over the socket
    assert {c["db"] for c in unix_clients} == {"0"}


def test_password_resolution(
    env: pytest.MonkeyPatch, make_server: type[RedisServer], probe: Probe
) -> None:
    server = make_server().start()
    admin = server.client()
    admin.config_set("requirepass", SECRET)
    host = f"127.0.0.1:{server.port}"
    env.setenv("REDIS_URL", f"redis://{host}/0")
    env.setenv("REDIS_PASSWORD", SECRET)
    redisprep.configure()
    probe.write()  # REDIS_PASSWORD authenticates a URL without one (ours and prep.redis)
    env.setenv("REDIS_PASSWORD", "wrong")
    redisprep.configure(f"redis://:{SECRET}@{host}/0")  # the URL's password wins
    probe.write()
    info = redisprep.connection_info()
    assert SECRET not in repr(info) and "***" in info["url"]
    env.delenv("REDIS_PASSWORD")
    redisprep.configure(f"redis://{host}/0", connect_timeout=2, timeout=2, retries=0)
    with pytest.raises(RedisPrepError) as err:
        probe.write()
    assert "NOAUTH" in str(err.value) and SECRET not in str(err.value)
    authed = redis.Redis(port=server.port, password=SECRET, decode_responses=True)
    assert authed.exists("probe-1") and authed.exists("probe-2")
    authed.close()


def test_unreachable_redis_names_the_address_never_the_password(
    env: pytest.MonkeyPatch, probe: Probe
) -> None:
    from support.redis_server import free_port

    port = free_port()  # nothing listens there
    redisprep.configure(f"redis://:{SECRET}@127.0.0.1:{port}/0", connect_timeout=1, retries=0)
    with pytest.raises(redisprep.RedisConnectionError) as err:
        probe.write()
    assert isinstance(err.value, RedisPrepError) and isinstance(err.value, ConnectionError)
    assert f"127.0.0.1:{port}" in str(err.value) and SECRET not in str(err.value)


# -- bad configuration: a clear ConfigError, nothing lost -----------------------

BAD_CALLS: dict[str, tuple[str | None, dict[str, Any], str]] = {
    "no host": ("redis://", {}, "cannot parse"),
    "unknown scheme": ("foo://127.0.0.1:1", {}, "cannot parse"),
    "password, no host": (f"redis://:{SECRET}@/0", {}, "cannot parse"),
    "bad port": ("redis://127.0.0.1:notaport/0", {}, "cannot parse"),
    "prep_db 16": ("{url}", {"prep_db": 16}, "prep DB"),
    "prep_db -1": ("{url}", {"prep_db": -1}, "prep DB"),
    "timeout 0": ("{url}", {"timeout": 0}, "timeout"),
    "timeout nan": ("{url}", {"timeout": float("nan")}, "timeout"),
    "timeout huge": ("{url}", {"timeout": 1e9}, "timeout"),
    "connect_timeout negative": ("{url}", {"connect_timeout": -1}, "connect_timeout"),
    "missing CA file": ("{url}", {"tls_ca_file": "/nonexistent/ca.crt"}, "CA file"),
    "empty cluster URL": ("redis+cluster://", {}, r"redis\+cluster"),
}

BAD_ENV: dict[str, tuple[dict[str, str], str]] = {
    "REDISPREP_TIMEOUT": ({"REDISPREP_TIMEOUT": "soon"}, "REDISPREP_TIMEOUT"),
    "REDISPREP_PREP_DB": ({"REDISPREP_PREP_DB": "zero"}, "REDISPREP_PREP_DB"),
    "REDISPREP_FSYNC": ({"REDISPREP_FSYNC": "maybe"}, "REDISPREP_FSYNC"),
    "REDIS_PORT": ({"REDIS_HOST": "127.0.0.1", "REDIS_PORT": "http"}, "REDIS_PORT"),
    "REDISPREP_LAYOUT": ({"REDISPREP_LAYOUT": "clustr"}, "REDISPREP_LAYOUT"),
}


def _state(a: RedisServer) -> tuple[dict[str, Any], dict[str, str]]:
    return dict(redisprep.connection_info()), a.client().hgetall("kept")


@pytest.fixture
def configured(
    env: pytest.MonkeyPatch, two: tuple[RedisServer, RedisServer], tmp_path: Path
) -> tuple[RedisServer, RedisPrep]:
    a, _ = two
    redisprep.configure(a.url, timeout=3)
    wd = tmp_path / "kept"
    wd.mkdir()
    prep = RedisPrep.getInstance(str(wd))
    prep["before"] = 1
    return a, prep


@pytest.mark.parametrize("case", sorted(BAD_CALLS))
def test_bad_configure_raises_and_keeps_the_settings(
    configured: tuple[RedisServer, RedisPrep], case: str
) -> None:
    a, prep = configured
    url, kwargs, says = BAD_CALLS[case]
    before = _state(a)
    with pytest.raises(ConfigError, match=says) as err:
        redisprep.configure(url.format(url=a.url) if url else url, **kwargs)
    assert isinstance(err.value, RedisPrepError) and isinstance(err.value, ValueError)
    assert SECRET not in str(err.value)
    assert _state(a) == before
    prep["after"] = 2  # the settings in force still work, on the same server
    assert a.client().hget("kept", "timestamps:after") == "2"
    assert prep.redis.hget("kept", "timestamps:before") == "1"


@pytest.mark.parametrize("case", sorted(BAD_ENV))
def test_bad_environment_raises_and_keeps_the_settings(
    configured: tuple[RedisServer, RedisPrep], env: pytest.MonkeyPatch, case: str
) -> None:
    a, prep = configured
    values, says = BAD_ENV[case]
    for k, v in values.items():
        env.setenv(k, v)
    before = _state(a)
    with pytest.raises(ConfigError, match=says):
        redisprep.configure()
    assert _state(a) == before
    prep["after"] = 2
    assert a.client().hget("kept", "timestamps:after") == "2"


@pytest.mark.slow
def test_cluster_layout_config_and_refusals(
    env: pytest.MonkeyPatch,
    local_cluster: LocalCluster,
    redis_info: Any,
    tmp_path: Path,
) -> None:
    local_cluster.wait_ok()
    local_cluster.flushall()
    rc = local_cluster.client()
    env.setenv("REDIS_URL", local_cluster.url)  # a redis+cluster:// URL selects the layout
    redisprep.configure()
    assert redisprep.connection_info()["layout"] == "cluster"
    redisprep.configure(local_cluster.url, timeout=3, connect_timeout=2)
    info = redisprep.connection_info()
    assert (info["layout"], info["timeout"], info["connect_timeout"]) == ("cluster", 3.0, 2.0)
    wd = tmp_path / "on-cluster"
    wd.mkdir()
    prep = RedisPrep.getInstance(str(wd))
    for url, kwargs in [
        ("redis://", {}),
        (redis_info.url, {"timeout": 0}),
        (redis_info.url, {"prep_db": 99}),
        (local_cluster.url, {"timeout": 0}),
        (local_cluster.url, {"connect_timeout": -1}),
        ("redis+cluster://", {}),
        # one keyspace and plain TCP on the cluster: refused, not silently ignored
        (local_cluster.url, {"prep_db": 1}),
        (local_cluster.url, {"tls_ca_file": str(tmp_path / "ca.pem")}),
    ]:
        with pytest.raises(ConfigError):
            redisprep.configure(url, **kwargs)
        # still the cluster layout with its settings: nothing switched silently
        assert redisprep.connection_info() == info, (url, kwargs)
        prep["still_on_cluster"] = 1
        assert rc.hget(prep.hash_key, "timestamps:still_on_cluster") == "1"
        rc.hdel(prep.hash_key, "timestamps:still_on_cluster")
    assert not redis_info.client(0).exists("on-cluster")
    rc.close()
