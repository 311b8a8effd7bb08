"""The cluster layout on a real local Redis Cluster (3 masters + 3 replicas):
same dump bytes as legacy, one slot per run, invalidation, failover."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest
import redis

import redisprep
from redisprep import RedisPrep, TaskEnum
from support.cluster import LocalCluster
from support.legacy_ref import LegacyRedisPrep

pytestmark = pytest.mark.slow


@pytest.fixture
def on_cluster(local_cluster: LocalCluster) -> Iterator[LocalCluster]:
    """The session's shared cluster (tests/conftest.py), empty, redisprep pointed at it."""
    local_cluster.wait_ok()
    local_cluster.flushall()
    redisprep.configure(local_cluster.url)
    try:
        yield local_cluster
    finally:
        redisprep.configure(os.environ["REDIS_URL"])


def _run(tmp_path: Path, parent: str, run_id: str) -> Path:
    d = tmp_path / parent / run_id
    d.mkdir(parents=True)
    return d


# Scripted sequences, each applied to the legacy reference (standalone) and to
# redisprep on the cluster layout; the dump bytes must be identical.
Step = Callable[[Any], None]
SCENARIOS: dict[str, list[Step]] = {
    "timestamps": [
        lambda p: p.__setitem__(str(TaskEnum.build_climate), 1700000000),
        lambda p: p.__setitem__("run_geneva", "1700000001"),
        lambda p: p.remove_timestamp(TaskEnum.build_climate),
        lambda p: p.remove_all_timestamp(),
    ],
    "attrs_and_jobs": [
        lambda p: setattr(p, "has_sbs", True),
        lambda p: setattr(p, "sbs_required", 0),
        lambda p: p.set_rq_job_id("build_climate_rq", 'job-é"\\\n'),
        lambda p: p.set_archive_job_id("arch-1"),
        lambda p: p.clear_archive_job_id(),
    ],
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_dump_bytes_match_legacy(
    on_cluster: LocalCluster, tmp_path: Path, redis_info: Any, scenario: str
) -> None:
    legacy_dir = _run(tmp_path, "legacy", "run-1")
    ours_dir = _run(tmp_path, "ours", "run-1")
    legacy = LegacyRedisPrep.getInstance(str(legacy_dir), redis_info.client(0))
    ours = RedisPrep.getInstance(str(ours_dir))
    for step in SCENARIOS[scenario]:
        step(legacy)
        step(ours)
        assert (ours_dir / "redisprep.dump").read_bytes() == (
            legacy_dir / "redisprep.dump"
        ).read_bytes()
    assert list(on_cluster.client().hgetall(ours.hash_key).items()) == list(
        redis_info.client(0).hgetall("run-1").items()
    )


def test_one_run_lives_in_one_slot(on_cluster: LocalCluster, tmp_path: Path) -> None:
    for run_id in ["abc-def", "a{b}c", "weird }{ run", "ünï"]:
        d = _run(tmp_path, "runs", run_id)
        prep = RedisPrep.getInstance(str(d))
        keys = [prep.hash_key]
        for plan in prep.explain(TaskEnum.abstract_watershed):
            keys.extend(plan["keys"])
        node = on_cluster.nodes[0].client()
        slots = {node.execute_command("CLUSTER", "KEYSLOT", k) for k in keys}
        assert len(slots) == 1, (run_id, keys)


def test_timestamp_invalidates_on_cluster(on_cluster: LocalCluster, tmp_path: Path) -> None:
    rc = on_cluster.client()
    mine = RedisPrep.getInstance(str(_run(tmp_path, "runs", "mine")))
    other = RedisPrep.getInstance(str(_run(tmp_path, "runs", "other")))
    my_keys = [k for p in mine.explain(TaskEnum.build_climate) for k in p["keys"]]
    other_keys = [k for p in other.explain(TaskEnum.build_climate) for k in p["keys"]]
    unrelated = [k for p in mine.explain(TaskEnum.build_landuse) for k in p["keys"]]
    unrelated = [k for k in unrelated if k not in my_keys]
    assert my_keys and other_keys
    for k in my_keys + other_keys + unrelated:
        rc.set(k, "cached", ex=3600)
    before = redisprep.stats()["round_trips"]
    mine.timestamp(TaskEnum.build_climate)
    assert redisprep.stats()["round_trips"] - before == 1
    assert not any(rc.exists(k) for k in my_keys)
    for k in other_keys + unrelated:
        assert rc.get(k) == "cached"
        assert 3500 < rc.ttl(k) <= 3600
    assert mine[TaskEnum.build_climate] is not None


def test_failover_keeps_acknowledged_timestamps(tmp_path: Path) -> None:
    # A cluster of its own: this test kills a master (the shared one stays intact).
    cluster = LocalCluster(node_timeout_ms=1000).start()
    try:
        redisprep.configure(cluster.url, connect_timeout=1, timeout=1)
        runs = [_run(tmp_path, "runs", f"run-{i}") for i in range(24)]
        preps = [RedisPrep.getInstance(str(d)) for d in runs]
        victim = cluster.master_of(preps[0].hash_key)
        acked: dict[str, int] = {}
        errors = 0
        stop = threading.Event()

        def killer() -> None:
            time.sleep(0.5)
            victim.kill()
            stop.set()

        t = threading.Thread(target=killer)
        t.start()
        deadline = time.monotonic() + 60
        i = 0
        resumed_after_kill = 0
        while time.monotonic() < deadline and resumed_after_kill < 48:
            prep = preps[i % len(preps)]
            value = 1_700_000_000 + i
            try:
                prep[TaskEnum.build_climate] = value
                acked[prep.run_id] = value
                if stop.is_set():
                    resumed_after_kill += 1
            except redisprep.RedisPrepError:
                errors += 1
                time.sleep(0.1)
            i += 1
        t.join()
        assert resumed_after_kill >= 48, "calls did not resume after the failover"
        cluster.wait_ok(30)
        rc = cluster.client()
        for prep, d in zip(preps, runs):
            if prep.run_id not in acked:
                continue
            want = str(acked[prep.run_id])
            in_redis = rc.hget(prep.hash_key, f"timestamps:{TaskEnum.build_climate}")
            dumped = (d / "redisprep.dump").read_text()
            assert in_redis == want or f'"timestamps:build_climate": "{want}"' in dumped
    finally:
        redisprep.configure(os.environ["REDIS_URL"])
        cluster.cleanup()


def test_prep_redis_is_a_cluster_client(on_cluster: LocalCluster, tmp_path: Path) -> None:
    prep = RedisPrep.getInstance(str(_run(tmp_path, "runs", "rc")))
    assert isinstance(prep.redis, redis.RedisCluster)
    assert prep.redis.hget(prep.hash_key, "attrs:loaded") == "true"


def test_migrate_layout_copies_hashes_not_caches(
    on_cluster: LocalCluster, redis_info: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from redisprep.cli.migrate_layout import main

    src = redis_info.client(0)
    for run_id in ["run-a", "run-b", "odd{id}"]:
        src.hset(run_id, mapping={"attrs:loaded": "true", "timestamps:build_climate": "17"})
        src.hset(run_id, "locked:climate.nodb", "true")
    src.set("not-a-run", "x")
    redis_info.client(13).set("/runs/run-a/climate.nodb", "cached")
    standalone = redis_info.url
    rc = on_cluster.client()

    assert main(["--from", standalone, "--to", on_cluster.url, "--dry-run"]) == 0
    assert "3 run(s) would be copied" in capsys.readouterr().out
    assert rc.dbsize() == 0

    assert main(["--from", standalone, "--to", on_cluster.url, "--runs", "run-*"]) == 0
    assert sorted(rc.scan_iter(match="prep:*", target_nodes="primaries")) == [
        "prep:{run-a}",
        "prep:{run-b}",
    ]
    for _ in range(2):  # idempotent
        assert main(["--from", standalone, "--to", on_cluster.url]) == 0
    key = "prep:{odd(id)}:odd{id}"  # the bytes the cluster layout names this run by
    assert rc.hgetall(key) == {"attrs:loaded": "true", "timestamps:build_climate": "17"}
    assert not list(rc.scan_iter(match="*nodb*", target_nodes="primaries"))
    # and back: cluster -> a fresh standalone DB gives the same hashes
    src.flushall()
    assert main(["--from", on_cluster.url, "--to", standalone]) == 0
    assert src.hgetall("odd{id}") == {"attrs:loaded": "true", "timestamps:build_climate": "17"}
