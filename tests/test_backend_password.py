"""A password-protected Redis Cluster works end to end (issue 15): with
``requirepass`` (URL ``redis+cluster://:secret@h1:p1,...``) and with an ACL user
(``redis+cluster://alice:pw@h1:p1,...``), for ``timestamp()``, for ``prep.redis``
(the redis-py client wepppy reaches for) and for ``migrate-layout`` both ways.
The password comes from the URL only: ``REDIS_PASSWORD`` is unset."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

import redisprep
from redisprep import RedisPrep, TaskEnum, _redisprep
from support.cluster import LocalCluster
from support.redis_server import PasswordServer

pytestmark = pytest.mark.slow

SECRET = "cl-S3cret-Pa55"
ALICE_PW = "alice-Pw-9"  # not the default user's password: only alice gets in with it
BOB_PW = "b:o@b/9%x"  # URL delimiters, percent-encoded in the URL
ACL_USERS = [
    *("--user", "alice", "on", f">{ALICE_PW}", "~*", "&*", "+@all"),
    *("--user", "bob", "on", f">{BOB_PW}", "~*", "&*", "+@all"),
]

# (username, password) of each way in; "" is the default user (requirepass)
CREDENTIALS = {
    "requirepass": ("", SECRET),
    "acl_user": ("alice", ALICE_PW),
    "acl_user_encoded_password": ("bob", BOB_PW),
}
HASHES = {
    "run-a": {"attrs:loaded": "true", "timestamps:build_climate": "1700000000"},
    "run-b": {"attrs:loaded": "true", "rq:build_climate_rq": "job-1"},
    "odd{id}": {"attrs:loaded": "true", "attrs:has_sbs": "false"},
}
CLEAN_ENV = [
    "REDIS_PASSWORD",
    "REDISPREP_URL_OVERRIDE",
    "REDISPREP_CLUSTER_URL",
    "REDISPREP_LAYOUT",
]


@pytest.fixture(scope="module")
def auth_cluster() -> Iterator[LocalCluster]:
    """3 masters + 3 replicas, every node with requirepass/masterauth and users alice, bob."""
    cluster = LocalCluster(password=SECRET, extra_args=ACL_USERS)
    try:
        cluster.start()
        cluster.wait_replicas()  # masterauth: the replicas authenticate to sync
        yield cluster
    finally:
        cluster.cleanup()


@pytest.fixture(scope="module")
def auth_server() -> Iterator[PasswordServer]:
    """A standalone server with the same password and users."""
    server = PasswordServer(SECRET, extra_args=ACL_USERS)
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture(params=sorted(CREDENTIALS))
def cred(request: pytest.FixtureRequest) -> tuple[str, str]:
    user, password = CREDENTIALS[request.param]
    return user, password


@pytest.fixture
def on_auth_cluster(
    auth_cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch, redis_info: Any
) -> Iterator[LocalCluster]:
    """The cluster, empty, with no password in the environment; redisprep back on
    the session server after."""
    for name in CLEAN_ENV:
        monkeypatch.delenv(name, raising=False)
    auth_cluster.wait_ok()
    auth_cluster.flushall()
    try:
        yield auth_cluster
    finally:
        redisprep.configure(redis_info.url)


def test_timestamp_and_prep_redis_on_a_password_cluster(
    on_auth_cluster: LocalCluster, cred: tuple[str, str], tmp_path: Path
) -> None:
    user, password = cred
    redisprep.configure(url=on_auth_cluster.url_as(user, password))
    wd = tmp_path / "runs" / "pw-run"
    wd.mkdir(parents=True)
    before = int(time.time())
    prep = RedisPrep.getInstance(str(wd))
    prep.timestamp(TaskEnum.build_climate)
    key = "prep:{pw-run}"
    rc = on_auth_cluster.client(username=user or None, password=password)
    try:
        stored = rc.hgetall(key)
        assert stored["attrs:loaded"] == "true"
        assert before <= int(stored["timestamps:build_climate"]) <= int(time.time())
        # prep.redis: a redis-py cluster client with the URL's credentials
        assert isinstance(prep.redis, redis.RedisCluster)
        assert prep.redis.hgetall(key) == stored
        assert prep.redis.execute_command("ACL WHOAMI") == (user or "default")
        prep.redis.hset(key, "rq:build_climate_rq", "job-42")  # as wepppy code does
        assert prep.get_rq_job_id("build_climate_rq") == "job-42"
        assert rc.hget(key, "rq:build_climate_rq") == "job-42"
    finally:
        rc.close()
    assert password not in repr(redisprep.connection_info())


def migrate_layout(src: str, dst: str) -> subprocess.CompletedProcess[str]:
    """``python -m redisprep migrate-layout --from SRC --to DST`` in a fresh process
    whose environment holds no Redis settings."""
    env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV and k != "REDIS_URL"}
    return subprocess.run(
        [sys.executable, "-m", "redisprep", "migrate-layout", "--from", src, "--to", dst],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def _copies_three(src: str, dst: str, password: str) -> None:
    """``migrate-layout --from src --to dst`` copies the 3 runs and never shows the password."""
    done = migrate_layout(src, dst)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert password not in out
    assert "copied 3 run(s)" in done.stdout


def test_migrate_layout_both_ways_with_passwords(
    on_auth_cluster: LocalCluster, auth_server: PasswordServer, cred: tuple[str, str]
) -> None:
    user, password = cred
    standalone = auth_server.client()
    standalone.flushall()
    for run_id, fields in HASHES.items():
        standalone.hset(run_id, mapping=fields)
        standalone.hset(run_id, "locked:climate.nodb", "true")  # never copied
    rc = on_auth_cluster.client()
    try:
        _copies_three(
            auth_server.url_as(user, password), on_auth_cluster.url_as(user, password), password
        )
        for run_id, fields in HASHES.items():
            assert rc.hgetall(_redisprep.hash_key(run_id, layout="cluster")) == fields, run_id

        standalone.flushall()
        _copies_three(
            on_auth_cluster.url_as(user, password), auth_server.url_as(user, password), password
        )
        for run_id, fields in HASHES.items():
            assert standalone.hgetall(run_id) == fields, run_id
    finally:
        rc.close()
        standalone.close()
