"""Parity of the two layouts (issue 15): the same ``REDISPREP_*`` environment
gives the same settings, the same behaviour and, for bad values, the same
``ConfigError`` on the standalone and the cluster layout. Where they differed,
the standalone behaviour (the older, wepppy-facing one) is the one asserted.

Each case is applied three ways, as a process does: ``configure(url=...)``
after setting the environment; ``REDIS_URL`` in the environment and
``configure()``; and ``configure(url=...)`` first, then the environment, then
``reset_connections()`` (which re-reads the environment at the next call)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import redisprep
from redisprep import ConfigError, RedisPrep, RedisPrepError, TaskEnum
from support.envvars import clear_settings_env
from support.layouts import Layout

MISSING = "<missing>"

# connection_info() keys both layouts must report identically
SETTINGS = [
    "timeout",
    "connect_timeout",
    "retries",
    "fsync",
    "events",
    "events_channel",
    "min_replicas",
    "replica_timeout",
]
DEFAULTS: dict[str, Any] = {
    "timeout": 10.0,
    "connect_timeout": 5.0,
    "retries": 2,
    "fsync": False,
    "events": False,
    "events_channel": "redisprep:invalidations",
    "min_replicas": 0,
    "replica_timeout": 1.0,
}

# environment -> the settings it must give (the rest stay at DEFAULTS)
GOOD: dict[str, tuple[dict[str, str], dict[str, Any]]] = {
    "defaults": ({}, {}),
    "blank values are unset": (
        {"REDISPREP_TIMEOUT": " ", "REDISPREP_FSYNC": "", "REDISPREP_RETRIES": ""},
        {},
    ),
    "timeouts": (
        {"REDISPREP_TIMEOUT": "2.5", "REDISPREP_CONNECT_TIMEOUT": "1.5"},
        {"timeout": 2.5, "connect_timeout": 1.5},
    ),
    "retries": ({"REDISPREP_RETRIES": "4"}, {"retries": 4}),
    "retries zero": ({"REDISPREP_RETRIES": "0"}, {"retries": 0}),
    "retries capped at 10": ({"REDISPREP_RETRIES": "50"}, {"retries": 10}),
    "booleans on": (
        {"REDISPREP_FSYNC": "yes", "REDISPREP_EVENTS": " ON "},
        {"fsync": True, "events": True},
    ),
    "booleans 1": (
        {"REDISPREP_FSYNC": "1", "REDISPREP_EVENTS": "true"},
        {"fsync": True, "events": True},
    ),
    "booleans off": (
        {"REDISPREP_FSYNC": "off", "REDISPREP_EVENTS": "0"},
        {"fsync": False, "events": False},
    ),
    "events channel": (
        {"REDISPREP_EVENTS_CHANNEL": "wepp:inval"},
        {"events_channel": "wepp:inval"},
    ),
    "replication": (
        {"REDISPREP_MIN_REPLICAS": "1", "REDISPREP_REPLICA_TIMEOUT": "0.25"},
        {"min_replicas": 1, "replica_timeout": 0.25},
    ),
}

# environment -> a regex the ConfigError must match (and it must be the standalone text)
BAD: dict[str, tuple[dict[str, str], str]] = {
    "fsync maybe": ({"REDISPREP_FSYNC": "maybe"}, "REDISPREP_FSYNC"),
    "events maybe": ({"REDISPREP_EVENTS": "maybe"}, "REDISPREP_EVENTS"),
    "timeout abc": ({"REDISPREP_TIMEOUT": "abc"}, "REDISPREP_TIMEOUT"),
    "timeout -1": ({"REDISPREP_TIMEOUT": "-1"}, "timeout"),
    "timeout 0": ({"REDISPREP_TIMEOUT": "0"}, "timeout"),
    "connect_timeout abc": ({"REDISPREP_CONNECT_TIMEOUT": "abc"}, "REDISPREP_CONNECT_TIMEOUT"),
    "connect_timeout -1": ({"REDISPREP_CONNECT_TIMEOUT": "-1"}, "connect_timeout"),
    "retries x": ({"REDISPREP_RETRIES": "x"}, "REDISPREP_RETRIES"),
    "retries -1": ({"REDISPREP_RETRIES": "-1"}, "REDISPREP_RETRIES"),
    "min_replicas x": ({"REDISPREP_MIN_REPLICAS": "x"}, "REDISPREP_MIN_REPLICAS"),
    "min_replicas -1": ({"REDISPREP_MIN_REPLICAS": "-1"}, "min_replicas"),
    "replica_timeout 0": ({"REDISPREP_REPLICA_TIMEOUT": "0"}, "replica_timeout"),
    "replica_timeout abc": ({"REDISPREP_REPLICA_TIMEOUT": "abc"}, "REDISPREP_REPLICA_TIMEOUT"),
}

MODES = ["configure_url", "env_url", "reset"]


@pytest.fixture
def env(layout: Layout, monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """A clean environment on ``layout``. Requested after ``layout`` so that the
    environment is restored before ``layout`` re-points redisprep at the
    session server (a bad variable left set would make that fail)."""
    clear_settings_env(monkeypatch)
    yield monkeypatch


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, redis_info: Any) -> Iterator[pytest.MonkeyPatch]:
    """A clean environment; redisprep back on the session server after (once the
    environment is restored)."""
    clear_settings_env(monkeypatch)
    try:
        yield monkeypatch
    finally:
        monkeypatch.undo()
        redisprep.configure(url=redis_info.url)


def settings_of(info: dict[str, Any]) -> dict[str, Any]:
    return {k: info.get(k, MISSING) for k in SETTINGS}


def apply(layout: Layout, env: pytest.MonkeyPatch, values: dict[str, str], mode: str) -> None:
    """Put ``values`` in the environment and make redisprep (re)read it, ``mode`` way."""
    if mode == "reset":
        redisprep.configure(url=layout.url)
    for k, v in values.items():
        env.setenv(k, v)
    if mode == "configure_url":
        redisprep.configure(url=layout.url)
    elif mode == "env_url":
        env.setenv("REDIS_URL", layout.url)
        redisprep.configure()
    else:
        redisprep.reset_connections()


def standalone_error(redis_info: Any) -> str:
    """The standalone layout's ConfigError for the environment in force (the
    settings in force are kept: a refused configure() changes nothing)."""
    with pytest.raises(ConfigError) as err:
        redisprep.configure(url=redis_info.url)
    return str(err.value)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", sorted(GOOD))
def test_good_environment_gives_the_same_settings(
    layout: Layout, env: pytest.MonkeyPatch, case: str, mode: str
) -> None:
    values, changed = GOOD[case]
    apply(layout, env, values, mode)
    info = redisprep.connection_info()
    assert info["layout"] == layout.name
    assert settings_of(info) == {**DEFAULTS, **changed}


@pytest.mark.parametrize("mode", ["configure_url", "env_url"])
@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_environment_is_the_same_config_error(
    layout: Layout, env: pytest.MonkeyPatch, redis_info: Any, tmp_path: Path, case: str, mode: str
) -> None:
    values, says = BAD[case]
    wd = tmp_path / "kept"
    wd.mkdir()
    prep = RedisPrep.getInstance(str(wd))
    before = dict(redisprep.connection_info())
    for k, v in values.items():
        env.setenv(k, v)
    want = standalone_error(redis_info)
    assert redisprep.connection_info() == before
    if mode == "env_url":
        env.setenv("REDIS_URL", layout.url)
    with pytest.raises(ConfigError, match=says) as err:
        redisprep.configure(url=layout.url if mode == "configure_url" else None)
    assert isinstance(err.value, RedisPrepError) and isinstance(err.value, ValueError)
    assert str(err.value) == want
    # refused: the layout and settings in force are untouched and still work
    assert redisprep.connection_info() == before
    prep.timestamp(TaskEnum.build_climate)
    assert layout.client(0).hget(layout.hash_key(wd.name), "timestamps:build_climate")


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_environment_after_reset_fails_the_next_call_alike(
    layout: Layout, env: pytest.MonkeyPatch, redis_info: Any, tmp_path: Path, case: str
) -> None:
    values, says = BAD[case]
    wd = tmp_path / "run"
    wd.mkdir()
    prep = RedisPrep.getInstance(str(wd))
    for k, v in values.items():
        env.setenv(k, v)
    want = standalone_error(redis_info)
    redisprep.reset_connections()
    with pytest.raises(ConfigError, match=says) as err:
        prep.timestamp(TaskEnum.build_climate)
    assert str(err.value) == want
    with pytest.raises(ConfigError, match=says):
        redisprep.connection_info()
    for k in values:
        env.delenv(k)
    redisprep.reset_connections()  # fixed environment: works again, same layout
    prep.timestamp(TaskEnum.build_climate)
    assert redisprep.connection_info()["layout"] == layout.name


def test_events_from_the_environment_publish_alike(
    layout: Layout, env: pytest.MonkeyPatch, redis_info: Any, tmp_path: Path
) -> None:
    """REDISPREP_EVENTS / REDISPREP_EVENTS_CHANNEL: one event per invalidating
    timestamp, on the configured channel, with the same payload."""
    channel = "redisprep:parity-events"
    env.setenv("REDISPREP_EVENTS", "1")
    env.setenv("REDISPREP_EVENTS_CHANNEL", channel)
    redisprep.configure(url=layout.url)
    # PUBLISH on a cluster reaches subscribers on every node
    node = layout.cluster.nodes[0].client() if layout.cluster else redis_info.client(0)
    ps = node.pubsub(ignore_subscribe_messages=True)
    try:
        ps.subscribe(channel)
        assert ps.get_message(timeout=1.0) is None
        wd = tmp_path / "runs" / "ev-run"
        wd.mkdir(parents=True)
        prep = RedisPrep.getInstance(str(wd))
        prep.timestamp(TaskEnum.build_climate)
        msg = ps.get_message(timeout=5.0)
        assert msg is not None, "no event"
        event = json.loads(msg["data"])
        assert (event["run_id"], event["task"], event["wd"]) == ("ev-run", "build_climate", str(wd))
        assert event["timestamp"] == prep[TaskEnum.build_climate]
        assert layout.cache_key("ev-run", f"{wd}/climate.nodb") in event["keys"]
        assert ps.get_message(timeout=0.2) is None, "exactly one event"
        env.setenv("REDISPREP_EVENTS", "0")
        redisprep.configure(url=layout.url)
        prep.timestamp(TaskEnum.build_climate)
        assert ps.get_message(timeout=0.3) is None, "REDISPREP_EVENTS=0 publishes nothing"
    finally:
        ps.close()
        node.close()


def test_too_few_replicas_is_the_same_error(
    layout: Layout, env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """REDISPREP_MIN_REPLICAS above what the layout has: the write is applied and
    dumped, and reported as ReplicationError, on both layouts."""
    wd = tmp_path / "runs" / "repl-run"
    wd.mkdir(parents=True)
    prep = RedisPrep.getInstance(str(wd))
    env.setenv("REDISPREP_MIN_REPLICAS", "5")
    env.setenv("REDISPREP_REPLICA_TIMEOUT", "0.1")
    redisprep.configure(url=layout.url)
    with pytest.raises(redisprep.ReplicationError, match="of 5"):
        prep.timestamp(TaskEnum.build_climate)
    stored = layout.client(0).hget(layout.hash_key("repl-run"), "timestamps:build_climate")
    assert stored is not None
    assert f'"timestamps:build_climate": "{stored}"' in (wd / "redisprep.dump").read_text()


class Blackhole:
    """A TCP listener that never accepts: connections complete (the kernel's
    backlog) and then nothing ever answers. ``close()`` resets them."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = int(self.sock.getsockname()[1])

    def close(self) -> None:
        self.sock.close()


SCHEMES = ["redis", pytest.param("redis+cluster", marks=pytest.mark.slow)]


def call_silent_server(
    env: pytest.MonkeyPatch, tmp_path: Path, scheme: str
) -> tuple[float, list[BaseException], int]:
    """One write with REDISPREP_TIMEOUT / REDISPREP_CONNECT_TIMEOUT 0.3 s and
    REDISPREP_RETRIES=0 against a server that never answers: how long it took
    (at most 5 s are waited for), what it raised, and the server's port."""
    hole = Blackhole()
    env.setenv("REDISPREP_TIMEOUT", "0.3")
    env.setenv("REDISPREP_CONNECT_TIMEOUT", "0.3")
    env.setenv("REDISPREP_RETRIES", "0")
    url = f"{scheme}://127.0.0.1:{hole.port}" + ("/0" if scheme == "redis" else "")
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            RedisPrep(str(tmp_path / "absent" / "silent-run"))
        except BaseException as e:  # reported by the caller, whatever it is
            outcome.append(e)

    try:
        redisprep.configure(url=url)
        t = threading.Thread(target=call, daemon=True)
        started = time.monotonic()
        t.start()
        t.join(5.0)
        elapsed = time.monotonic() - started
    finally:
        hole.close()  # unblocks a call that ignored the limits
    t.join(60)
    return elapsed, outcome, hole.port


@pytest.mark.parametrize("scheme", SCHEMES)
def test_timeouts_from_the_environment_bound_a_silent_server_alike(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, scheme: str
) -> None:
    """The environment's timeouts and retries bound a call to a silent server on
    both layouts: it fails within the limits, as a connection error naming the address."""
    elapsed, outcome, port = call_silent_server(clean_env, tmp_path, scheme)
    assert elapsed < 3.0, f"a 0.3 s timeout with 0 retries took over {elapsed:.1f} s"
    assert len(outcome) == 1, "the call against a silent server did not fail"
    assert isinstance(outcome[0], redisprep.RedisConnectionError), repr(outcome[0])
    assert f"127.0.0.1:{port}" in str(outcome[0])


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_silent_server_is_the_same_timeout_error(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, scheme: str
) -> None:
    """The standalone layout reports a silent server as ``RedisTimeoutError`` (also
    a ``TimeoutError``); the cluster must raise the same class for the same cause."""
    _, outcome, _ = call_silent_server(clean_env, tmp_path, scheme)
    assert len(outcome) == 1, "the call against a silent server did not fail"
    assert isinstance(outcome[0], redisprep.RedisTimeoutError), repr(outcome[0])
    assert isinstance(outcome[0], TimeoutError)
