"""``timestamp()`` records like legacy and deletes the caches the rules name for
the task and its cascades, in one round trip; the explicit cache methods; the
broken-rules and broken-Redis paths; logging, counters and events.

Everything is observed from outside: bytes in Redis (values and TTLs), bytes
on disk, ``INFO commandstats`` of a private server, and the request/reply
turns seen by a TCP proxy between redisprep and Redis."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Optional

import pytest
import redis

import redisprep
from redisprep import RedisPrep, Rules, TaskEnum
from support.layouts import Layout
from support.legacy_ref import LegacyRedisPrep
from support.redis_server import RedisServer, url_with_db
from support.replicas import start_replica
from support.turns import TurnCounter, commandstats

TTL = 259_200  # wepppy's NoDb cache TTL (72 h)
RULES = Rules.load()


# -- helpers ---------------------------------------------------------------------


def read_dump(wd: Path) -> dict[str, str]:
    data: dict[str, str] = json.loads((wd / "redisprep.dump").read_text())
    return data


def _key(wd: str, controller: str, lay: Optional[Layout]) -> str:
    rendered = f"{os.path.abspath(wd)}/{controller}.nodb"
    return lay.cache_key(os.path.basename(wd.rstrip("/")), rendered) if lay else rendered


def all_cache_keys(wd: str, lay: Optional[Layout] = None) -> list[str]:
    """Every controller's cache key for a run as stored in ``lay`` (standalone when
    None): the file path from wepppy's rule ``{wd}/<name>.nodb`` (not by redisprep),
    on the cluster inside the layout's key (named by the core; its bytes are pinned
    in ``tests/test_layout_keys.py``)."""
    return [_key(wd, c, lay) for c in RULES.controllers]


def closure_keys(task: str, wd: str, lay: Optional[Layout] = None) -> list[str]:
    return [_key(wd, c, lay) for c in RULES.controllers_for(task)]


def fill(r13: redis.Redis[str], keys: list[str], ttl: int = TTL) -> None:
    pipe = r13.pipeline()
    for k in keys:
        pipe.set(k, f"cached:{k}", ex=ttl)
    pipe.execute()


def assert_kept(r13: redis.Redis[str], keys: list[str], ttl: int = TTL) -> None:
    pipe = r13.pipeline()
    for k in keys:
        pipe.get(k)
        pipe.ttl(k)
    got = pipe.execute()
    for i, k in enumerate(keys):
        assert got[2 * i] == f"cached:{k}", k
        assert ttl - 5 <= got[2 * i + 1] <= ttl, (k, got[2 * i + 1])


def assert_gone(r13: redis.Redis[str], keys: list[str]) -> None:
    assert keys
    assert r13.exists(*keys) == 0, [k for k in keys if r13.exists(k)]


# -- timestamp(): record + invalidate ----------------------------------------------


@pytest.mark.parametrize(
    "task", [TaskEnum.build_climate, TaskEnum.abstract_watershed, TaskEnum.run_wepp_watershed]
)
def test_timestamp_records_like_legacy_and_deletes_the_closure(
    layout: Layout, run_dir: Path, tmp_path: Path, redis_info: Any, task: TaskEnum
) -> None:
    r0, r13, key = layout.client(0), layout.client(13), layout.hash_key(run_dir.name)
    wd = str(run_dir)
    legacy_dir = tmp_path / "legacy" / run_dir.name
    legacy_dir.mkdir(parents=True)
    legacy = LegacyRedisPrep.getInstance(str(legacy_dir), redis_info.client(1))
    prep = RedisPrep.getInstance(wd)
    every = all_cache_keys(wd, layout)
    stale = closure_keys(str(task), wd, layout)
    fill(r13, every)
    for step in [TaskEnum.fetch_dem, TaskEnum.build_channels]:
        prep[step] = 1_700_000_000
        legacy[step] = 1_700_000_000

    before = int(time.time())
    prep.timestamp(task)
    after = int(time.time())

    recorded = r0.hget(key, f"timestamps:{task}")
    assert recorded is not None and before <= int(recorded) <= after
    assert recorded == str(int(recorded))  # int(time.time()) as a decimal string
    assert_gone(r13, stale)
    assert_kept(r13, [k for k in every if k not in stale])
    # the dump is the legacy dump of the same hash, byte for byte
    legacy.timestamp(task, now=int(recorded))
    assert (run_dir / "redisprep.dump").read_bytes() == (legacy_dir / "redisprep.dump").read_bytes()
    assert list(r0.hgetall(key).items()) == list(redis_info.client(1).hgetall(run_dir.name).items())


@pytest.mark.parametrize("min_replicas", [0, 1])
def test_one_round_trip_per_timestamp(
    private_server: RedisServer,
    make_server: type[RedisServer],
    run_dir: Path,
    min_replicas: int,
) -> None:
    """One round trip per write, also with ``min_replicas``: WAIT is pipelined
    behind EXEC in the same request (the replica must acknowledge it)."""
    if min_replicas:
        start_replica(make_server, private_server)
    proxy = TurnCounter(private_server.port)
    try:
        redisprep.configure(f"redis://127.0.0.1:{proxy.port}/0", min_replicas=min_replicas)
        c13, admin = private_server.client(13), private_server.client(0)
        admin.ping()
        prep = RedisPrep.getInstance(str(run_dir))
        prep.timestamp(TaskEnum.build_landuse)  # warm: connection and handshake
        for task in [TaskEnum.build_climate, TaskEnum.abstract_watershed, TaskEnum.set_readonly]:
            n_keys = len(RULES.controllers_for(task))
            fill(c13, closure_keys(str(task), str(run_dir))[::2])
            admin.config_resetstat()
            turns, stats = proxy.count(), redisprep.stats()
            prep.timestamp(task)
            assert proxy.count() - turns == 1, f"{task}: more than one round trip"
            assert redisprep.stats()["round_trips"] - stats["round_trips"] == 1
            expected = {"multi": 1, "exec": 1, "hexists": 1, "hset": 1, "hgetall": 1}
            if min_replicas:
                expected["wait"] = 1
            if n_keys:
                expected |= {"select": 2, "del": n_keys}
            seen = commandstats(admin)
            if min_replicas:
                seen.pop("replconf", None)  # the replica's own ACKs, not ours
            assert seen == expected, task
        turns = proxy.count()
        assert prep[TaskEnum.build_climate] is not None and prep.preflight()
        assert proxy.count() - turns == 2  # the counter does count: two reads, two turns
        # legacy-shaped writes are one round trip too
        for write in [
            lambda: prep.timestamp(TaskEnum.build_soils, invalidate=False),
            lambda: prep.__setitem__(TaskEnum.build_soils, 5),
            lambda: prep.remove_timestamp(TaskEnum.build_soils),
            lambda: prep.invalidate_caches_for_task(TaskEnum.build_climate),
        ]:
            turns = proxy.count()
            admin.config_resetstat()
            write()
            assert proxy.count() - turns == 1
            assert commandstats(admin).get("wait", 0) == min_replicas
    finally:
        redisprep.configure(private_server.url)
        proxy.close()


def test_other_runs_are_never_touched(layout: Layout, tmp_path: Path) -> None:
    r0, r13 = layout.client(0), layout.client(13)
    parent = tmp_path / "runs"
    names = ["a*", "ab", "a?", "[ab]", "a\\", "{a}", "a b", "ä"]
    for n in names:
        (parent / n).mkdir(parents=True)
    for n in names:
        fill(r13, all_cache_keys(str(parent / n), layout))
    prep = RedisPrep.getInstance(str(parent / "a*"))
    prep.timestamp(TaskEnum.project_init)  # every controller of run `a*`
    assert_gone(r13, all_cache_keys(str(parent / "a*"), layout))
    for n in names[1:]:
        assert_kept(r13, all_cache_keys(str(parent / n), layout))
        assert r0.exists(layout.hash_key(n)) == 0  # no other run's hash was created
    assert prep.clear_all_caches() == []
    for n in names[1:]:
        assert_kept(r13, all_cache_keys(str(parent / n), layout))


def test_nodb_files_are_never_touched(layout: Layout, run_dir: Path) -> None:
    r13 = layout.client(13)
    files = {}
    for c in RULES.controllers:
        p = run_dir / f"{c}.nodb"
        p.write_text(json.dumps({"py/object": c, "state": 1}))
        os.utime(p, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
        files[p] = p.read_bytes()
    fill(r13, all_cache_keys(str(run_dir), layout))
    prep = RedisPrep.getInstance(str(run_dir))
    prep.timestamp(TaskEnum.project_init)
    prep.invalidate_caches_for_task(TaskEnum.build_climate)
    prep.refresh_controller_cache("climate")
    prep.clear_all_caches()
    for p, data in files.items():
        assert p.read_bytes() == data
        assert p.stat().st_mtime_ns == 1_600_000_000_000_000_000
    assert sorted(os.listdir(run_dir)) == sorted([p.name for p in files] + ["redisprep.dump"])


def test_setitem_and_invalidate_false_keep_legacy_meaning(layout: Layout, run_dir: Path) -> None:
    r0, r13 = layout.client(0), layout.client(13)
    wd = str(run_dir)
    fill(r13, all_cache_keys(wd, layout))
    prep = RedisPrep.getInstance(wd)
    stats = redisprep.stats()
    prep[TaskEnum.abstract_watershed] = 1_700_000_000
    prep.timestamp(TaskEnum.abstract_watershed, invalidate=False)
    prep.remove_timestamp(TaskEnum.build_climate)
    prep.has_sbs = True
    prep.set_rq_job_id("build_climate_rq", "job-1")
    prep.remove_all_timestamp()
    assert_kept(r13, all_cache_keys(wd, layout))
    after = redisprep.stats()
    assert after["invalidations"] == stats["invalidations"]
    assert after["keys_deleted"] == stats["keys_deleted"]
    assert after["timestamps"] == stats["timestamps"] + 1
    assert read_dump(run_dir) == r0.hgetall(layout.hash_key(run_dir.name))


# -- broken rules, broken Redis ------------------------------------------------------


def redisprep_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("redisprep") and r.levelno == logging.WARNING
    ]


def test_missing_or_invalid_rules_record_but_never_invalidate(
    run_dir: Path, tmp_path: Path, r0: redis.Redis[str], r13: redis.Redis[str],
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.WARNING, logger="redisprep")
    monkeypatch.setenv("REDISPREP_RULES_RELOAD_INTERVAL", "0")
    path = tmp_path / "rules.json"
    redisprep.set_rules_path(path)  # does not exist
    wd = str(run_dir)
    fill(r13, all_cache_keys(wd))
    prep = RedisPrep.getInstance(wd)
    for _ in range(3):
        r0.hdel(run_dir.name, "timestamps:build_climate")
        prep.timestamp(TaskEnum.build_climate)
        assert r0.hget(run_dir.name, "timestamps:build_climate") is not None
    assert_kept(r13, all_cache_keys(wd))
    warnings = redisprep_warnings(caplog)
    assert len(warnings) == 1, warnings
    assert "invalidation is skipped" in warnings[0] and str(path) in warnings[0]
    assert read_dump(run_dir) == r0.hgetall(run_dir.name)

    # a new (still invalid) version of the file: one more warning, then quiet
    for i, text in enumerate(['{"version": 1', '{"version": 9, "controllers": {}, "tasks": {}}']):
        path.write_text(text)
        os.utime(path, (1_700_000_000 + i, 1_700_000_000 + i))
        for _ in range(3):
            prep.timestamp(TaskEnum.build_climate)
        assert len(redisprep_warnings(caplog)) == 2 + i
    assert "unsupported version 9" in redisprep_warnings(caplog)[-1]
    assert_kept(r13, all_cache_keys(wd))
    with pytest.raises(redisprep.ConfigError):
        prep.invalidate_caches_for_task(TaskEnum.build_climate)
    assert_kept(r13, all_cache_keys(wd))

    # fixed: invalidation resumes
    path.write_text(json.dumps(json.loads(Path(redisprep.rules_path()).read_text())))
    prep.timestamp(TaskEnum.build_climate)
    assert_gone(r13, closure_keys("build_climate", wd))


def test_transaction_refused_by_redis_applies_nothing(
    private_server: RedisServer, run_dir: Path
) -> None:
    r0, c13 = private_server.client(0), private_server.client(13)
    wd = str(run_dir)
    prep = RedisPrep.getInstance(wd)
    prep[TaskEnum.abstract_watershed] = 1_700_000_000
    fill(c13, all_cache_keys(wd))
    hash_before = r0.hgetall(run_dir.name)
    dump_before = (run_dir / "redisprep.dump").read_bytes()
    failures = redisprep.stats()["failures"]
    r0.config_set("maxmemory", 1)  # every write is refused: OOM inside MULTI
    try:
        with pytest.raises(redisprep.RedisCommandError) as info:
            prep.timestamp(TaskEnum.build_climate)
        assert "OOM" in str(info.value) or "EXECABORT" in str(info.value)
    finally:
        r0.config_set("maxmemory", 0)
    assert r0.hgetall(run_dir.name) == hash_before
    assert (run_dir / "redisprep.dump").read_bytes() == dump_before
    assert_kept(c13, all_cache_keys(wd))
    assert redisprep.stats()["failures"] >= failures + 1


def test_unreachable_redis_raises_and_leaves_the_dump(
    private_server: RedisServer, run_dir: Path
) -> None:
    prep = RedisPrep.getInstance(str(run_dir))
    prep[TaskEnum.abstract_watershed] = 1_700_000_000
    dump_before = (run_dir / "redisprep.dump").read_bytes()
    private_server.stop()
    redisprep.configure(private_server.url, connect_timeout=0.5, timeout=0.5, retries=0)
    with pytest.raises(redisprep.RedisConnectionError):
        prep.timestamp(TaskEnum.build_climate)
    assert (run_dir / "redisprep.dump").read_bytes() == dump_before


# -- the explicit cache methods ---------------------------------------------------------


def test_invalidate_caches_for_task_returns_the_keys_deleted(layout: Layout, run_dir: Path) -> None:
    r0, r13, key = layout.client(0), layout.client(13), layout.hash_key(run_dir.name)
    wd = str(run_dir)
    prep = RedisPrep.getInstance(wd)
    stale = closure_keys("build_climate", wd, layout)
    present = stale[::2]
    fill(r13, present)
    fill(r13, [k for k in all_cache_keys(wd, layout) if k not in stale])
    hash_before = r0.hgetall(key)
    stats = redisprep.stats()
    deleted = prep.invalidate_caches_for_task(TaskEnum.build_climate)
    assert deleted == present  # exactly the keys that existed, in plan order
    assert_gone(r13, stale)
    assert_kept(r13, [k for k in all_cache_keys(wd, layout) if k not in stale])
    assert r0.hgetall(key) == hash_before  # no timestamp recorded
    assert prep.invalidate_caches_for_task(TaskEnum.build_climate) == []
    assert prep.invalidate_caches_for_task("run_tomorrow") == []  # no rules: nothing
    after = redisprep.stats()
    assert after["keys_deleted"] - stats["keys_deleted"] == len(present)
    assert after["invalidations"] - stats["invalidations"] == 3


def test_refresh_controller_cache(layout: Layout, run_dir: Path) -> None:
    r13 = layout.client(13)
    wd = str(run_dir)
    prep = RedisPrep.getInstance(wd)
    fill(r13, all_cache_keys(wd, layout))
    key = layout.cache_key(run_dir.name, f"{wd}/climate.nodb")
    assert prep.refresh_controller_cache("climate") == [key]
    assert r13.exists(key) == 0
    assert_kept(r13, [k for k in all_cache_keys(wd, layout) if k != key])
    assert prep.refresh_controller_cache("climate") == []
    with pytest.raises(redisprep.UnknownControllerError, match='"climat"') as err:
        prep.refresh_controller_cache("climat")
    assert isinstance(err.value, ValueError) and not isinstance(err.value, TypeError)
    assert prep.refresh_controller_cache("climate") == []  # and nothing was deleted meanwhile


def pattern_rules(tmp_path: Path) -> Path:
    doc = json.loads(Path(redisprep.rules_path()).read_text())
    doc["controllers"]["omni"]["patterns"] = ["{wd}/_pups/*/omni.nodb"]
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(doc))
    return path


def test_clear_all_caches_scans_never_keys(private_server: RedisServer, tmp_path: Path) -> None:
    redisprep.set_rules_path(pattern_rules(tmp_path))
    c13 = private_server.client(13)
    parent = tmp_path / "runs"
    mine, other = parent / "a*", parent / "ab"
    for d in (mine, other):
        d.mkdir(parents=True)
    pups = {d: [f"{d}/_pups/s{i}/omni.nodb" for i in range(3)] for d in (mine, other)}
    fill(c13, all_cache_keys(str(mine)) + pups[mine])
    fill(c13, all_cache_keys(str(other)) + pups[other])
    c13.set("unrelated", "x")
    prep = RedisPrep.getInstance(str(mine))
    admin = private_server.client(0)
    admin.config_resetstat()
    deleted = prep.clear_all_caches()
    assert sorted(deleted) == sorted(all_cache_keys(str(mine)) + pups[mine])
    assert c13.exists(*deleted) == 0
    assert_kept(c13, all_cache_keys(str(other)) + pups[other])
    assert c13.get("unrelated") == "x"
    stats = commandstats(admin)
    assert stats.get("scan", 0) >= 1
    assert "keys" not in stats
    # timestamp() also follows the pattern (SCAN after its one transaction)
    fill(c13, pups[mine])
    prep.timestamp(TaskEnum.run_omni_scenarios)
    assert c13.exists(*pups[mine]) == 0
    assert_kept(c13, pups[other])
    assert "keys" not in commandstats(admin)


def test_explain_is_a_dry_run(layout: Layout, run_dir: Path) -> None:
    r0, r13, key = layout.client(0), layout.client(13), layout.hash_key(run_dir.name)
    wd = str(run_dir)
    prep = RedisPrep.getInstance(wd)
    fill(r13, all_cache_keys(wd, layout))
    hash_before = r0.hgetall(key)
    plans = prep.explain(TaskEnum.build_climate)
    assert_kept(r13, all_cache_keys(wd, layout))
    assert r0.hgetall(key) == hash_before
    assert [k for p in plans for k in p["keys"]] == closure_keys("build_climate", wd, layout)
    assert plans[0] == {
        "controller": "climate",
        "via": ["build_climate"],
        "direct": True,
        "keys": [layout.cache_key(run_dir.name, f"{wd}/climate.nodb")],
        "patterns": [],
        "db": 13,
    }
    assert all(p["via"][0] == "build_climate" for p in plans)
    # what explain announced is what timestamp deletes
    prep.timestamp(TaskEnum.build_climate)
    assert_gone(r13, [k for p in plans for k in p["keys"]])


# -- observability -------------------------------------------------------------------


def test_debug_logs_never_show_the_password(
    private_server: RedisServer, run_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    password = "s3cret-Pa55w0rd"
    private_server.client(0).config_set("requirepass", password)
    url = f"redis://:{password}@127.0.0.1:{private_server.port}/0"
    c13 = redis.Redis.from_url(url_with_db(url, 13), decode_responses=True)
    caplog.set_level(logging.DEBUG, logger="redisprep")
    redisprep.configure(url)
    assert password not in json.dumps(redisprep.connection_info())
    wd = str(run_dir)
    prep = RedisPrep.getInstance(wd)
    fill(c13, closure_keys("build_climate", wd))
    prep.timestamp(TaskEnum.build_climate)
    n = len(closure_keys("build_climate", wd))
    debug = [r.getMessage() for r in caplog.records if r.name.startswith("redisprep")]
    assert any(
        f'run="{run_dir.name}"' in m and 'task="build_climate"' in m and f"keys_deleted={n}" in m
        for m in debug
    ), debug
    # failures name the server, never the password
    messages = []
    redisprep.configure(f"redis://:wrong-{password}@127.0.0.1:{private_server.port}/0", retries=0)
    with pytest.raises(redisprep.RedisPrepError) as info:
        prep.timestamp(TaskEnum.build_climate)
    messages.append(str(info.value))
    redisprep.configure(url, retries=0, connect_timeout=0.5)
    private_server.stop()
    with pytest.raises(redisprep.RedisConnectionError) as info2:
        prep.timestamp(TaskEnum.build_climate)
    messages.append(str(info2.value))
    assert f"127.0.0.1:{private_server.port}" in messages[-1]
    for text in messages + [r.getMessage() for r in caplog.records]:
        assert password not in text
    c13.close()


def test_stats_counters(layout: Layout, run_dir: Path) -> None:
    wd = str(run_dir)
    prep = RedisPrep.getInstance(wd)
    fill(layout.client(13), closure_keys("build_climate", wd, layout))
    before = redisprep.stats()
    prep.timestamp(TaskEnum.build_climate)
    prep.timestamp(TaskEnum.build_climate)  # nothing left to delete
    prep.timestamp(TaskEnum.set_readonly)  # invalidates nothing
    after = redisprep.stats()
    delta = {k: after[k] - before[k] for k in after}
    assert delta["timestamps"] == 3
    assert delta["invalidations"] == 3
    assert delta["keys_deleted"] == len(closure_keys("build_climate", wd))
    assert delta["failures"] == 0
    assert delta["round_trips"] == 3
    assert delta["dumps_written"] == 3


def master_commandstats(layout: Layout) -> dict[str, int]:
    """Calls per command summed over the servers holding data (masters)."""
    if layout.cluster is None:
        return commandstats(layout.client(0))
    total: dict[str, int] = {}
    for node in layout.cluster.nodes:
        c = node.client()
        if c.info("replication")["role"] == "master":
            for k, v in commandstats(c).items():
                total[k] = total.get(k, 0) + v
        c.close()
    return total


def reset_commandstats(layout: Layout) -> None:
    servers = [n.client() for n in layout.cluster.nodes] if layout.cluster else [layout.client(0)]
    for c in servers:
        c.config_resetstat()


def test_one_request_per_timestamp_on_each_layout(layout: Layout, run_dir: Path) -> None:
    """The standalone request is the MULTI/EXEC transaction (exact commands:
    ``test_one_round_trip_per_timestamp``); on the cluster it is one EVALSHA."""
    wd = str(run_dir)
    prep = RedisPrep.getInstance(wd)
    prep.timestamp(TaskEnum.build_landuse)  # warm: connections, SCRIPT LOAD
    fill(layout.client(13), all_cache_keys(wd, layout))
    reset_commandstats(layout)
    before = redisprep.stats()
    prep.timestamp(TaskEnum.build_climate)
    assert redisprep.stats()["round_trips"] - before["round_trips"] == 1
    stats = master_commandstats(layout)
    if layout.is_cluster:
        assert stats.get("evalsha") == 1, stats
        assert not {"multi", "exec", "eval", "script"} & set(stats), stats
    else:
        assert stats.get("multi") == stats.get("exec") == 1, stats
    assert stats.get("del") == len(RULES.controllers_for("build_climate"))
    assert_gone(layout.client(13), closure_keys("build_climate", wd, layout))


def test_invalidation_event_on_each_layout(layout: Layout, run_dir: Path) -> None:
    channel = "redisprep:test-invalidation"
    redisprep.configure(layout.url, events=True, events_channel=channel)
    # PUBLISH reaches every node of a cluster: any node's subscriber hears it
    sub = layout.cluster.nodes[0].client() if layout.cluster else layout.client(0)
    ps = sub.pubsub(ignore_subscribe_messages=True)
    try:
        ps.subscribe(channel)
        assert ps.get_message(timeout=1.0) is None
        wd = str(run_dir)
        prep = RedisPrep.getInstance(wd)
        present = closure_keys("build_climate", wd, layout)[1::2]
        fill(layout.client(13), present)
        fresh = prep.timestamp_and_preflight(TaskEnum.build_climate)
        msg = ps.get_message(timeout=5.0)
        assert msg is not None and msg["channel"] == channel
        event = json.loads(msg["data"])
        assert event["run_id"] == run_dir.name and event["task"] == "build_climate"
        assert event["timestamp"] == prep[TaskEnum.build_climate]
        assert set(event["keys"]) == set(closure_keys("build_climate", wd, layout))
        assert event["checklist"] == fresh["checklist"]
        assert ps.get_message(timeout=0.2) is None  # one message per timestamp
    finally:
        ps.close()
        sub.close()
        redisprep.configure(layout.url)
