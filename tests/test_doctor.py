"""``python -m redisprep doctor`` against real servers, in fresh processes driven
by the environment alone: healthy and password-protected (password from a
secrets file), a wrong password, no server, an ACL user refused MULTI, a
cluster; the JSON shape; and that it changes neither data nor configuration."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.cluster import LocalCluster
from support.envvars import settings_free_env
from support.redis_server import PasswordServer, free_port

SECRET = "doc-S3cret-7q"
NO_MULTI = ["--user", "carol", "on", ">carol-pw", "~*", "&*", "+@all", "-multi"]


@pytest.fixture(scope="module")
def server() -> Iterator[PasswordServer]:
    """Password-protected, with AOF on (as wepppy runs it) and keyspace events."""
    args = ["--appendonly", "yes", "--notify-keyspace-events", "Eg", *NO_MULTI]
    s = PasswordServer(SECRET, extra_args=args)
    try:
        yield s.start()
    finally:
        s.cleanup()


def doctor(*args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "redisprep", "doctor", *args],
        capture_output=True,
        text=True,
        env=settings_free_env(**settings),
        timeout=60,
        check=False,
    )


def secret_file(tmp_path: Path, text: str = SECRET, name: str = "redis_password") -> str:
    path = tmp_path / name
    path.write_text(text + "\n")
    return str(path)


def lines(out: str) -> dict[str, str]:
    """``{check name: status}`` from the text report."""
    found = {}
    for line in out.splitlines():
        status, _, rest = line.partition("  ")
        if status in ("PASS", "WARN", "FAIL"):
            found[rest.strip().split("  ")[0]] = status
    return found


def env_of(server: PasswordServer, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "REDIS_URL": f"redis://127.0.0.1:{server.port}/9",
        "REDIS_HOST": "127.0.0.1",
        "REDIS_PASSWORD_FILE": secret_file(tmp_path),
        **extra,
    }


def test_healthy_password_protected_server(server: PasswordServer, tmp_path: Path) -> None:
    done = doctor(**env_of(server, tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert SECRET not in done.stdout + done.stderr
    got = lines(done.stdout)
    assert got["settings"] == got["connection"] == got["server"] == "PASS", done.stdout
    assert got["prep DB 0"] == got["cache DB 13"] == got["MULTI/EXEC"] == "PASS"
    assert got["EVALSHA"] == got["persistence"] == got["keyspace events"] == "PASS"
    assert "password set (from REDIS_PASSWORD_FILE)" in done.stdout
    assert "(from REDIS_URL)" in done.stdout
    valkey = "valkey" in os.path.basename(str(PasswordServer.executable))
    kind = "Valkey 8." if valkey else "Redis "
    assert f"PASS  server           {kind}" in done.stdout


def test_wrong_password_fails_with_exit_1(server: PasswordServer, tmp_path: Path) -> None:
    done = doctor(
        **env_of(server, tmp_path, REDIS_PASSWORD_FILE=secret_file(tmp_path, "nope", "wrong"))
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert lines(done.stdout)["connection"] == "FAIL"
    assert "authentication failed" in done.stdout and "REDIS_PASSWORD_FILE" in done.stdout
    assert SECRET not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_unreachable_server_fails_with_exit_1(tmp_path: Path) -> None:
    port = free_port()
    done = doctor(REDIS_URL=f"redis://127.0.0.1:{port}/0", REDISPREP_RETRIES="0")
    assert done.returncode == 1, done.stdout + done.stderr
    assert lines(done.stdout)["connection"] == "FAIL"
    assert f"127.0.0.1:{port}" in done.stdout and "fix:" in done.stdout


def test_missing_secrets_file_fails_on_settings(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    done = doctor(REDIS_URL="redis://127.0.0.1:1/0", REDIS_PASSWORD_FILE=str(missing))
    assert done.returncode == 1
    assert lines(done.stdout) == {"settings": "FAIL"}
    assert "REDIS_PASSWORD_FILE" in done.stdout and str(missing) in done.stdout


def test_acl_user_without_multi_fails(server: PasswordServer) -> None:
    done = doctor(REDIS_URL=f"redis://carol:carol-pw@127.0.0.1:{server.port}/0")
    assert done.returncode == 1
    assert lines(done.stdout)["MULTI/EXEC"] == "FAIL"
    assert "carol-pw" not in done.stdout
    assert "set (from the URL)" in done.stdout


def test_json_shape(server: PasswordServer, tmp_path: Path) -> None:
    done = doctor("--format", "json", **env_of(server, tmp_path))
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["exit"] == 0 and doc["status"] in ("PASS", "WARN")
    names = [c["name"] for c in doc["checks"]]
    assert names[:4] == ["settings", "rules", "connection", "server"]
    assert "latency" in names and "persistence" in names
    for c in doc["checks"]:
        assert set(c) == {"name", "status", "summary", "hint", "data"}
    settings = doc["checks"][0]["data"]
    assert settings["password"] == "set (from REDIS_PASSWORD_FILE)"
    assert settings["source"] == "REDIS_URL"
    assert doc["checks"][1]["data"]["tasks"] > 0
    assert SECRET not in done.stdout


def test_bad_arguments_exit_2() -> None:
    assert doctor("--format", "yaml").returncode == 2


def _state(server: PasswordServer) -> dict[str, Any]:
    c = server.client()
    config = c.config_get("*")
    config.pop("requirepass", None)
    return {
        "keys": {db: sorted(server.client(db).keys("*")) for db in (0, 9, 13)},
        "config": config,
        "sizes": [server.client(db).dbsize() for db in range(16)],
    }


def test_doctor_changes_no_data_and_no_configuration(
    server: PasswordServer, tmp_path: Path
) -> None:
    c0, c13 = server.client(0), server.client(13)
    c0.flushall()
    c0.hset("run-x", mapping={"attrs:loaded": "true"})
    c13.set("/runs/run-x/climate.nodb", "{}")
    before = _state(server)
    for fmt in ("text", "json"):
        assert doctor("--format", fmt, **env_of(server, tmp_path)).returncode == 0
    assert _state(server) == before
    assert c0.hgetall("run-x") == {"attrs:loaded": "true"}


@pytest.mark.slow
def test_on_a_password_cluster(tmp_path: Path) -> None:
    cluster = LocalCluster(password=SECRET)
    try:
        cluster.start()
        done = doctor(
            REDIS_URL=f"redis+cluster://{cluster.hosts}",
            REDIS_PASSWORD_FILE=secret_file(tmp_path),
        )
        assert done.returncode == 0, done.stdout + done.stderr
        got = lines(done.stdout)
        assert got["cluster"] == got["EVALSHA"] == got["connection"] == "PASS", done.stdout
        assert got["server"] == "PASS" and "(cluster)" in done.stdout, done.stdout
        assert "Redis ?" not in done.stdout and "16384/16384 slots" in done.stdout
        assert SECRET not in done.stdout
    finally:
        cluster.cleanup()
