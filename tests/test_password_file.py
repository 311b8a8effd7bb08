"""wepppy's production environment (issue 26): the URL from ``REDIS_URL``, else
``RQ_REDIS_URL``, else ``SESSION_REDIS_URL``, else ``REDIS_HOST``/``REDIS_PORT``;
the password the URL's own, else ``REDIS_PASSWORD``, else the contents of the
file ``REDIS_PASSWORD_FILE`` names. Each rule is checked against real
password-protected servers, standalone and cluster, by a fresh process driven
by its environment alone."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from redisprep import Rules
from redisprep._redisprep import hash_key
from support.cluster import LocalCluster
from support.envvars import settings_free_env
from support.redis_server import PasswordServer, free_port

SECRET = "pf-S3cret-9x"

# Run in the subprocess: timestamp() a run, then report what it saw (never the password).
SCRIPT = r"""
import json, logging, sys
logging.basicConfig(level=logging.DEBUG)  # every log line goes to stderr, checked too
import redisprep
from redisprep import RedisPrep, TaskEnum
from redisprep._demo.app import rq_connection
from redisprep._demo.nodb import cache_client
wd = sys.argv[1]
prep = RedisPrep.getInstance(wd)
prep.timestamp(TaskEnum.build_climate)
info = dict(redisprep.connection_info())
out = {"info": info, "whoami": prep.redis.execute_command("ACL WHOAMI")}
print(repr(prep), repr(prep.redis), file=sys.stderr)
if info["layout"] == "standalone" and "URL" not in info["password"]:
    # the demo's clients, given a URL without a password, resolve it as redisprep does
    url = "redis://%s/0" % info["address"]
    out["demo"] = [cache_client(url).ping(), rq_connection(url).ping()]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def server() -> Iterator[PasswordServer]:
    s = PasswordServer(SECRET)
    try:
        yield s.start()
    finally:
        s.cleanup()


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    """A Docker-style secrets file: the password with a trailing newline and blanks."""
    path = tmp_path / "redis_password"
    path.write_text(f"  {SECRET}\n\n")
    return path


def run(wd: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, str(wd)],
        capture_output=True,
        text=True,
        env=settings_free_env(**settings),
        timeout=60,
        check=False,
    )


def ok(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert SECRET not in out
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def make_run(tmp_path: Path, name: str = "pf-run") -> Path:
    wd = tmp_path / "runs" / name
    wd.mkdir(parents=True)
    return wd


def plain(server: PasswordServer, db: int = 0) -> str:
    return f"redis://127.0.0.1:{server.port}/{db}"


def test_the_worker_environment_writes_db0_and_clears_db13(
    server: PasswordServer, secret_file: Path, tmp_path: Path
) -> None:
    """wepppy's RQ workers: REDIS_URL=.../9, REDIS_HOST, REDIS_PASSWORD_FILE, no REDIS_PASSWORD."""
    wd = make_run(tmp_path)
    r0, r13 = server.client(0), server.client(13)
    r0.flushall()
    cache_keys = Rules.load(None).keys_for("build_climate", str(wd))
    assert cache_keys
    for key in cache_keys:
        r13.set(key, "cached")
    done = run(
        wd,
        REDIS_URL=plain(server, 9),
        REDIS_HOST="127.0.0.1",
        REDIS_PASSWORD_FILE=str(secret_file),
    )
    result = ok(done)
    assert r0.hget("pf-run", "attrs:loaded") == "true"
    assert r0.hexists("pf-run", "timestamps:build_climate")
    assert server.client(9).dbsize() == 0  # nothing in the RQ DB
    assert [k for k in cache_keys if r13.exists(k)] == []
    info = result["info"]
    assert info["source"] == "REDIS_URL"
    assert info["password"] == "set (from REDIS_PASSWORD_FILE)"
    assert info["password_file"] == str(secret_file)
    assert info["prep_db"] == 0
    assert result["whoami"] == "default"
    assert result["demo"] == [True, True]


@pytest.mark.parametrize(
    ("settings", "source", "password"),
    [
        # RQ_REDIS_URL, then SESSION_REDIS_URL (a dead port: it must not be used)
        ({"RQ_REDIS_URL": "{url}", "SESSION_REDIS_URL": "{dead}"}, "RQ_REDIS_URL", "FILE"),
        ({"SESSION_REDIS_URL": "{url}"}, "SESSION_REDIS_URL", "FILE"),
        ({"REDIS_HOST": "127.0.0.1", "REDIS_PORT": "{port}"}, "REDIS_HOST/REDIS_PORT", "FILE"),
        # the URL's own password beats REDIS_PASSWORD and the file (both wrong here)
        ({"REDIS_URL": "{url_pw}", "REDIS_PASSWORD": "wrong"}, "REDIS_URL", "the URL"),
        # REDIS_PASSWORD beats the file (wrong here)
        ({"REDIS_URL": "{url}", "REDIS_PASSWORD": SECRET}, "REDIS_URL", "REDIS_PASSWORD"),
    ],
)
def test_resolution_order(
    server: PasswordServer,
    tmp_path: Path,
    settings: dict[str, str],
    source: str,
    password: str,
) -> None:
    wrong_file = tmp_path / "wrong"
    wrong_file.write_text("not-the-password\n")
    good_file = tmp_path / "good"
    good_file.write_text(SECRET + "\n")
    values = {
        "url": plain(server),
        "url_pw": server.url,
        "dead": f"redis://127.0.0.1:{free_port()}/0",
        "port": str(server.port),
    }
    env = {k: v.format(**values) for k, v in settings.items()}
    env["REDIS_PASSWORD_FILE"] = str(good_file if password == "FILE" else wrong_file)
    wd = make_run(tmp_path)
    server.client().flushall()
    info = ok(run(wd, **env))["info"]
    label = "REDIS_PASSWORD_FILE" if password == "FILE" else password
    assert (info["source"], info["password"]) == (source, f"set (from {label})")
    assert server.client().hget("pf-run", "attrs:loaded") == "true"
    assert SECRET not in json.dumps(info)


@pytest.mark.parametrize("problem", ["missing", "empty", "directory", "not_utf8"])
def test_an_unusable_secrets_file_is_a_config_error_naming_it(
    server: PasswordServer, tmp_path: Path, problem: str
) -> None:
    path = tmp_path / "redis_password"
    if problem == "empty":
        path.write_text(" \n\n")
    elif problem == "directory":
        path.mkdir()
    elif problem == "not_utf8":
        path.write_bytes(b"\xff\xfe" + SECRET.encode())
    server.client().flushall()
    done = run(make_run(tmp_path), REDIS_URL=plain(server, 9), REDIS_PASSWORD_FILE=str(path))
    assert done.returncode != 0
    err = done.stderr
    assert "ConfigError" in err and "REDIS_PASSWORD_FILE" in err and str(path) in err, err
    assert SECRET not in err and "NOAUTH" not in err
    assert server.client().dbsize() == 0


# ----------------------------------------------------------------- cluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    c = LocalCluster(password=SECRET)
    try:
        c.start()
        yield c
    finally:
        c.cleanup()


@pytest.mark.slow
def test_cluster_password_from_the_file(
    cluster: LocalCluster, server: PasswordServer, secret_file: Path, tmp_path: Path
) -> None:
    """timestamp(), prep.redis, migrate-layout and the audit on a password cluster:
    the URLs carry no password, REDIS_PASSWORD_FILE does."""
    cluster.wait_ok()
    cluster.flushall()
    wd = make_run(tmp_path, "pf-cl")
    nodes = f"redis+cluster://{cluster.hosts}"
    result = ok(run(wd, REDIS_URL=nodes, REDIS_PASSWORD_FILE=str(secret_file)))
    assert result["info"]["layout"] == "cluster"
    assert result["info"]["password"] == "set (from REDIS_PASSWORD_FILE)"
    rc = cluster.client()
    try:
        assert rc.hget(hash_key("pf-cl", layout="cluster"), "attrs:loaded") == "true"
    finally:
        rc.close()
    env = settings_free_env(REDIS_URL=nodes, REDIS_PASSWORD_FILE=str(secret_file))
    server.client().flushall()

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "redisprep", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        assert SECRET not in done.stdout + done.stderr
        return done

    done = cli("migrate-layout", "--from", nodes, "--to", plain(server))
    assert done.returncode == 0 and "copied 1 run(s)" in done.stdout, done.stderr
    assert server.client().hget("pf-cl", "attrs:loaded") == "true"
    done = cli("audit", str(wd), "--format", "json")
    assert done.returncode in (0, 1), done.stderr
    assert json.loads(done.stdout)["runs"]
