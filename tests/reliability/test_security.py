"""Security: TLS with a certificate made in the test, AUTH with a password and
with an ACL user limited to what redisprep needs, the password never shown,
and rules files that cannot reach other runs or the prep DB."""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path
from typing import Any

import pytest
import redis

import redisprep
from redisprep import RedisPrep, Rules, TaskEnum
from support.redis_server import RedisServer, free_port

from .conftest import (
    HANG_BOUND,
    client_for_db,
    configure_fast,
    make_certs,
    read_dump,
    redis_hash,
    start_server,
    timed,
    tls_args,
)

PASSWORD = "s3cret-Pa55w0rd"


def closure_keys(task: str, wd: str) -> list[str]:
    return Rules.load().keys_for(task, wd)


def test_tls_with_a_self_signed_certificate(
    make_server: type[RedisServer], tmp_path: Path, run_dir: Path
) -> None:
    certs = make_certs(tmp_path / "tls")
    ca = str(certs / "ca.crt")
    port = free_port()
    server = start_server(
        make_server,
        tls_args(port, certs),
        {"ssl": True, "ssl_ca_certs": ca},
        scheme="rediss",
        port=port,
    )
    assert server.url.startswith("rediss://")
    admin = server.client()
    c13 = server.client(13)
    wd = str(run_dir)
    keys = closure_keys("build_climate", wd)
    for k in keys:
        c13.set(k, "cached")

    # without the CA the self-signed certificate is refused: verification is on
    configure_fast(server.url, retries=0)
    took, err = timed(lambda: RedisPrep.getInstance(wd))
    assert isinstance(err, redisprep.RedisConnectionError), repr(err)
    assert took < HANG_BOUND
    assert admin.exists("abc-def") == 0
    # plain TCP to the TLS port is no way around it either
    configure_fast(f"redis://127.0.0.1:{port}/0", retries=0)
    took, err = timed(lambda: RedisPrep.getInstance(wd))
    assert isinstance(err, redisprep.RedisConnectionError), repr(err)
    assert took < HANG_BOUND

    configure_fast(server.url, retries=0, tls_ca_file=ca)
    assert "TLS" in redisprep.connection_info()["address"]
    prep = RedisPrep.getInstance(wd)
    prep.timestamp(TaskEnum.build_climate)
    h = redis_hash(admin, "abc-def")
    assert h["timestamps:build_climate"] == str(prep[TaskEnum.build_climate])
    assert read_dump(run_dir) == h
    assert c13.exists(*keys) == 0  # invalidation went over TLS too
    # prep.redis (redis-py, for wepppy code that reaches past the class) also speaks TLS
    assert prep.redis.hget("abc-def", "timestamps:build_climate") == h["timestamps:build_climate"]


def test_password_auth(make_server: type[RedisServer], run_dir: Path) -> None:
    server = start_server(make_server, ["--requirepass", PASSWORD], {"password": PASSWORD})
    admin = server.client()
    # no password: refused with a clear error, nothing written
    configure_fast(server.url, retries=0)
    with pytest.raises(redisprep.RedisPrepError) as info:
        RedisPrep.getInstance(str(run_dir))
    assert "NOAUTH" in str(info.value) or "auth" in str(info.value).lower()
    assert admin.exists("abc-def") == 0
    # in the URL
    configure_fast(f"redis://:{PASSWORD}@127.0.0.1:{server.port}/0", retries=0)
    prep = RedisPrep.getInstance(str(run_dir))
    prep.timestamp(TaskEnum.build_soils)
    assert admin.hget("abc-def", "timestamps:build_soils") == str(prep[TaskEnum.build_soils])
    assert prep.redis.hget("abc-def", "attrs:loaded") == "true"
    assert read_dump(run_dir) == redis_hash(admin, "abc-def")


def test_password_from_redis_password_env(
    make_server: type[RedisServer], run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = start_server(make_server, ["--requirepass", PASSWORD], {"password": PASSWORD})
    monkeypatch.setenv("REDIS_PASSWORD", PASSWORD)
    configure_fast(server.url, retries=0)
    prep = RedisPrep.getInstance(str(run_dir))
    prep.timestamp(TaskEnum.build_soils)
    assert server.client().hget("abc-def", "timestamps:build_soils") is not None
    assert prep.redis.hget("abc-def", "timestamps:build_soils") is not None
    assert PASSWORD not in json.dumps(redisprep.connection_info())


#: What redisprep sends: the transaction (HEXISTS/HSET/HDEL/SELECT/DEL/HGETALL),
#: reads (HGET/HMGET/HGETALL), SCAN for pattern templates.
NEEDED = "+multi +exec +discard +select +ping +hexists +hset +hdel +hget +hmget +hgetall +del +scan"


def test_acl_user_with_only_the_needed_commands_and_keys(
    make_server: type[RedisServer], tmp_path: Path
) -> None:
    server = start_server(make_server, ["--requirepass", PASSWORD], {"password": PASSWORD})
    admin, c13 = server.client(), server.client(13)
    root = tmp_path / "runs"
    mine, other = root / "mine", root / "other"
    mine.mkdir(parents=True)
    other.mkdir()
    # the user may touch its run's hash and the caches under its run folder only
    admin.execute_command(
        "ACL", "SETUSER", "prep", "on", ">user-pw", "resetkeys", "~mine", f"~{mine}/*",
        "resetchannels", "-@all", *NEEDED.split(),
    )  # fmt: skip
    for k in closure_keys("build_climate", str(mine)) + closure_keys("build_climate", str(other)):
        c13.set(k, "cached")
    admin.hset("other", mapping={"attrs:loaded": "true", "timestamps:build_climate": "5"})

    configure_fast(f"redis://prep:user-pw@127.0.0.1:{server.port}/0", retries=0)
    prep = RedisPrep.getInstance(str(mine))
    prep.timestamp(TaskEnum.build_climate)
    prep.set_rq_job_id("build_climate_rq", "job-1")
    assert prep[TaskEnum.build_climate] is not None
    assert c13.exists(*closure_keys("build_climate", str(mine))) == 0
    assert read_dump(mine) == redis_hash(admin, "mine")
    assert prep.preflight()["checklist"]["climate"] is False  # no abstract_watershed yet
    assert "build_climate" in prep.timestamps_report()

    # the ACL really limits it: another run is refused and nothing of it moves
    theirs = RedisPrep.__new__(RedisPrep, str(other))
    with pytest.raises(redisprep.RedisCommandError) as info:
        theirs.timestamp(TaskEnum.build_climate)
    # Redis: "...has no permissions to access one of the keys"; Valkey: "No permissions..."
    assert "no permissions" in str(info.value).lower(), info.value
    assert admin.hgetall("other") == {"attrs:loaded": "true", "timestamps:build_climate": "5"}
    assert all(c13.get(k) == "cached" for k in closure_keys("build_climate", str(other)))
    assert not (other / "redisprep.dump").exists()


def test_password_never_shown(
    make_server: type[RedisServer],
    run_dir: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    server = start_server(make_server, ["--requirepass", PASSWORD], {"password": PASSWORD})
    url = f"redis://:{PASSWORD}@127.0.0.1:{server.port}/0"
    caplog.set_level(logging.DEBUG)  # every logger, at debug
    shown: list[str] = []
    configure_fast(url, retries=1)
    prep = RedisPrep.getInstance(str(run_dir))
    prep.timestamp(TaskEnum.build_climate)
    shown += [repr(prep), str(prep), repr(redisprep.connection_info())]
    shown += [repr(pickle.dumps(prep)), repr(prep.__getstate__()), repr(prep.redis)]
    shown.append(repr(prep.redis.connection_pool))
    # failures: wrong password, bad URL, server gone, a timeout
    errors: list[BaseException] = []
    configure_fast(f"redis://:wrong-{PASSWORD}@127.0.0.1:{server.port}/0", retries=0)
    errors.append(timed(lambda: prep.timestamp("x"))[1])  # type: ignore[arg-type]
    with pytest.raises(redisprep.ConfigError) as bad_url:
        redisprep.configure(f"redis://:{PASSWORD}@/0")
    errors.append(bad_url.value)
    configure_fast(url, retries=1)
    server.stop()
    errors.append(timed(lambda: prep.timestamp("x"))[1])  # type: ignore[arg-type]
    errors.append(timed(lambda: RedisPrep.getInstance(str(run_dir)))[1])  # type: ignore[arg-type]
    assert all(isinstance(e, redisprep.RedisPrepError) for e in errors), errors
    for e in errors:
        shown += [str(e), repr(e), repr(e.__cause__), repr(e.__context__), repr(e.args)]
    shown += [r.getMessage() for r in caplog.records]
    out = capfd.readouterr()
    shown += [out.out, out.err]
    assert any(r.levelno == logging.DEBUG for r in caplog.records)  # debug was captured
    assert any(f"127.0.0.1:{server.port}" in s for s in shown)  # errors name the server
    leaks = [s for s in shown if PASSWORD in s]
    assert leaks == []


# -- rules files cannot reach other runs or the prep DB ------------------------------


def rules_file(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(doc))
    return path


HOSTILE_TEMPLATES = {
    "no-placeholder": {"keys": ["/runs/other/climate.nodb"]},
    "no-placeholder-pattern": {"keys": ["{wd}/x"], "patterns": ["*climate.nodb"]},
    "glob-after-wd": {"keys": ["{wd}/x"], "patterns": ["{wd}*"]},
    "glob-after-run-id": {"keys": ["{wd}/x"], "patterns": ["rid:{run_id}*"]},
    "class-after-run-id": {"keys": ["{wd}/x"], "patterns": ["{run_id}[a-z]/c"]},
    "controller-only": {"keys": ["{controller}.nodb"]},
}


@pytest.mark.parametrize("kind", list(HOSTILE_TEMPLATES))
def test_templates_that_reach_other_runs_are_refused(kind: str) -> None:
    doc = {
        "version": 1,
        "controllers": {"climate": HOSTILE_TEMPLATES[kind]},
        "tasks": {"build_climate": {"invalidates": ["climate"]}},
    }
    with pytest.raises(redisprep.RulesError) as info:
        Rules.from_json(json.dumps(doc))
    assert info.value.issues and info.value.issues[0][0].startswith("controllers.climate.")
    # the same templates are accepted only when declared global on purpose
    HOSTILE_TEMPLATES[kind]["global"] = True  # type: ignore[index]
    try:
        assert Rules.from_json(json.dumps(doc)).controllers == ["climate"]
    finally:
        del HOSTILE_TEMPLATES[kind]["global"]  # type: ignore[attr-defined]


def test_literal_templates_never_escape_their_run(
    tmp_path: Path, r0: redis.Redis[str], redis_info: Any
) -> None:
    """``..`` and glob characters in a template are literal key text: a
    template that looks like a path into another run deletes nothing there."""
    c13 = client_for_db(redis_info.url, 13)
    root = tmp_path / "runs"
    mine, other = root / "mine", root / "mine-other"
    mine.mkdir(parents=True)
    other.mkdir()
    doc = {
        "version": 1,
        "controllers": {
            "climate": {
                "keys": ["{wd}/../mine-other/climate.nodb", "{wd}/climate.nodb"],
                "patterns": ["{wd}/*", "rid:{run_id}:*"],
            }
        },
        "tasks": {"build_climate": {"invalidates": ["climate"]}},
    }
    redisprep.set_rules_path(rules_file(tmp_path, doc))
    theirs = {f"{other}/climate.nodb", f"{other}/x", "rid:mine-other:1", "rid:mine-other:"}
    for k in theirs | {f"{mine}/climate.nodb", f"{mine}/x", "rid:mine:1"}:
        c13.set(k, "cached")
    prep = RedisPrep.getInstance(str(mine))
    prep.timestamp(TaskEnum.build_climate)
    assert c13.exists(f"{mine}/climate.nodb", f"{mine}/x", "rid:mine:1") == 0
    assert sorted(k for k in c13.keys("*")) == sorted(theirs)


def test_rules_cannot_delete_in_the_prep_db(
    tmp_path: Path, run_dir: Path, r0: redis.Redis[str], caplog: pytest.LogCaptureFixture
) -> None:
    """``"db": 0`` with a ``{run_id}`` key would delete the run's own prep hash
    (and the next dump would write ``{}`` over the file). The cache DB may not
    be the prep DB: timestamp() records and skips invalidation; the explicit
    cache methods raise ConfigError."""
    doc = {
        "version": 1,
        "db": 0,
        "controllers": {"wipe": {"keys": ["{run_id}", "{wd}/climate.nodb"]}},
        "tasks": {"build_climate": {"invalidates": ["wipe"]}},
    }
    prep = RedisPrep.getInstance(str(run_dir))
    prep.timestamp(TaskEnum.build_soils)
    prep.set_rq_job_id("build_soils_rq", "job-9")
    r0.set(f"{run_dir}/climate.nodb", "not a cache: DB 0 is the prep DB")
    redisprep.set_rules_path(rules_file(tmp_path, doc))
    caplog.set_level(logging.WARNING, logger="redisprep")
    prep.timestamp(TaskEnum.build_climate)
    h = redis_hash(r0, "abc-def")
    assert {"timestamps:build_soils", "timestamps:build_climate", "attrs:loaded"} <= set(h)
    assert h["rq:build_soils_rq"] == "job-9"
    assert read_dump(run_dir) == h
    assert r0.get(f"{run_dir}/climate.nodb") is not None
    assert any("prep DB" in r.getMessage() for r in caplog.records)
    for call in (
        lambda: prep.invalidate_caches_for_task(TaskEnum.build_climate),
        lambda: prep.refresh_controller_cache("wipe"),
        prep.clear_all_caches,
    ):
        with pytest.raises(redisprep.ConfigError):
            call()
    assert redis_hash(r0, "abc-def") == h
