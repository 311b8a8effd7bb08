"""Redis faults against private servers the tests start and kill: restart with
its data gone, kill during a burst, and the retry policy."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

import redisprep
from redisprep import RedisPrep, TaskEnum
from support.legacy_ref import LegacyRedisPrep
from support.redis_server import RedisServer

from .conftest import (
    HANG_BOUND,
    configure_fast,
    read_dump,
    redis_hash,
    temp_files,
    timed,
    wait_until,
)


def make_run(root: Path, name: str) -> Path:
    d = root / "runs" / name
    d.mkdir(parents=True)
    return d


def test_restart_empty_reconnects_and_recovers_the_dump(
    make_server: type[RedisServer], tmp_path: Path
) -> None:
    server = make_server().start()
    configure_fast(server.url, retries=3, timeout=5.0, connect_timeout=2.0)
    ours_dir, legacy_dir = make_run(tmp_path, "ours-run"), make_run(tmp_path, "legacy-run")

    prep = RedisPrep.getInstance(str(ours_dir))
    prep.timestamp(TaskEnum.build_climate)
    prep.set_rq_job_id("build_climate_rq", "job-1")
    acked = prep[TaskEnum.build_climate]
    assert acked is not None

    legacy = LegacyRedisPrep.getInstance(str(legacy_dir), server.client())
    legacy.timestamp(TaskEnum.build_climate)
    assert read_dump(legacy_dir)["timestamps:build_climate"] == str(legacy[TaskEnum.build_climate])

    before = redisprep.stats()
    server.restart()  # SIGKILL + start: the server keeps nothing on disk
    assert server.client().dbsize() == 0

    # Same long-lived instance, no getInstance: the pooled socket is dead, the
    # call reconnects by itself, notices the hash is gone and merges the dump back.
    took, err = timed(lambda: prep.timestamp(TaskEnum.build_soils))
    assert err is None, repr(err)
    after = redisprep.stats()
    assert after["recoveries"] == before["recoveries"] + 1
    assert after["connects"] > before["connects"]

    h = redis_hash(server.client(), "ours-run")
    assert h["timestamps:build_climate"] == str(acked)
    assert h["rq:build_climate_rq"] == "job-1"
    assert h["attrs:loaded"] == "true"
    assert "timestamps:build_soils" in h
    assert read_dump(ours_dir) == h
    assert temp_files(ours_dir) == []

    # Legacy, same sequence: its next write dumps the partial hash over the file.
    legacy.redis = server.client()  # a fresh client, as after a reconnect
    legacy.timestamp(TaskEnum.build_soils)
    legacy_dump = read_dump(legacy_dir)
    assert "timestamps:build_climate" not in legacy_dump  # lost in the file...
    again = LegacyRedisPrep.getInstance(str(legacy_dir), server.client())
    assert again[TaskEnum.build_climate] is None  # ...and for good

    # A second restart, then a fresh getInstance (the web-request path): lazy_load.
    server.restart()
    fresh = RedisPrep.getInstance(str(ours_dir))
    assert fresh[TaskEnum.build_climate] == acked
    assert redis_hash(server.client(), "ours-run") == read_dump(ours_dir)
    print(
        f"\nrestart empty: first call after restart (reconnect + recover {len(h)} fields) "
        f"{took * 1000:.1f} ms; acknowledged kept: ours 2/2, legacy 0/1"
    )


def test_retries_are_bounded_and_configurable(
    make_server: type[RedisServer], tmp_path: Path
) -> None:
    server = make_server().start()
    run = make_run(tmp_path, "retry-run")

    # retries=0: the dead pooled socket surfaces once; the pool is then clean.
    configure_fast(server.url, retries=0, timeout=5.0, connect_timeout=2.0)
    prep = RedisPrep.getInstance(str(run))
    prep.timestamp("a")
    server.restart()
    with pytest.raises(redisprep.RedisConnectionError):
        prep.timestamp("b")
    prep.timestamp("c")
    assert {"timestamps:a", "timestamps:c"} <= set(server.client().hgetall("retry-run"))

    # retries=8 (backoff 0.1, 0.2, 0.4, 0.8, then 1.6 s: ~7.9 s in all): Redis
    # comes back while the call is retrying, and the call succeeds.
    configure_fast(server.url, retries=8, timeout=5.0, connect_timeout=2.0)
    prep.timestamp("d")
    server.kill()
    restarter = threading.Timer(0.3, server.start)
    restarter.start()
    try:
        prep.timestamp("e")
    finally:
        restarter.join()
    h = redis_hash(server.client(), "retry-run")
    assert {"timestamps:a", "timestamps:c", "timestamps:d", "timestamps:e"} <= set(h)
    assert read_dump(run) == h

    # Redis stays down: the call gives up after its retries, it does not hang.
    configure_fast(server.url, retries=2)
    server.kill()
    took, err = timed(lambda: prep.timestamp("f"))
    assert isinstance(err, redisprep.RedisConnectionError), repr(err)
    assert took < HANG_BOUND
    assert f"127.0.0.1:{server.port}" in str(err)
    print(f"\nRedis down, retries=2: gave up after {took:.2f} s")


def test_kill_during_a_burst_loses_nothing_acknowledged(
    make_server: type[RedisServer], tmp_path: Path
) -> None:
    """4 threads stamp unique tasks on one run; Redis is SIGKILLed mid-burst
    and restarted empty while they keep going. Calls in flight fail with
    RedisConnectionError; every acknowledged timestamp survives in Redis and
    in the dump, and the dump equals Redis at the end."""
    server = make_server().start()
    configure_fast(server.url, retries=1, timeout=5.0, connect_timeout=1.0)
    run = make_run(tmp_path, "burst-run")
    RedisPrep.getInstance(str(run))
    threads_n, quota = 4, 60
    acked: list[list[str]] = [[] for _ in range(threads_n)]
    errors: list[list[BaseException]] = [[] for _ in range(threads_n)]
    killed = threading.Event()
    errors_after_kill = [0] * threads_n
    back = threading.Event()

    def worker(t: int) -> None:
        prep = RedisPrep.__new__(RedisPrep, str(run))
        i = 0
        deadline = time.monotonic() + 90
        while len(acked[t]) < quota and time.monotonic() < deadline:
            task = f"burst_{t}_{i}"
            i += 1
            try:
                prep.timestamp(task)
            except Exception as e:
                errors[t].append(e)
                if killed.is_set():
                    errors_after_kill[t] += 1
                if not back.is_set():
                    time.sleep(0.02)
                continue
            acked[t].append(task)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(threads_n)]
    for th in threads:
        th.start()
    try:
        wait_until(lambda: sum(map(len, acked)) >= threads_n * quota // 3)
        server.kill()
        killed.set()
        wait_until(
            lambda: all(
                errors_after_kill[t] >= 1 or len(acked[t]) == quota for t in range(threads_n)
            )
        )
        # while Redis is down the last good dump already holds every ack so far
        down_dump = read_dump(run)
        snapshot = [list(a) for a in acked]
        for done in snapshot:
            for task in done:
                assert f"timestamps:{task}" in down_dump
        server.start()
        back.set()
    finally:
        for th in threads:
            th.join(120)
    assert all(len(a) == quota for a in acked), [len(a) for a in acked]

    flat_errors = [e for errs in errors for e in errs]
    assert flat_errors, "the kill produced no failed call"
    for e in flat_errors:
        assert isinstance(e, redisprep.RedisConnectionError), repr(e)
        assert isinstance(e, redisprep.RedisPrepError)

    # A new process-like view: getInstance on the restarted server.
    prep = RedisPrep.getInstance(str(run))
    h = redis_hash(server.client(), "burst-run")
    for done in acked:
        for task in done:
            assert f"timestamps:{task}" in h, task
    assert h["attrs:loaded"] == "true"
    dump = read_dump(run)
    assert dump == h  # nothing half-applied: the file is one of Redis's states
    assert temp_files(run) == []
    prep.timestamp("after")
    assert read_dump(run) == redis_hash(server.client(), "burst-run")
    print(
        f"\nburst: acknowledged={sum(map(len, acked))} failed_calls={len(flat_errors)} "
        f"lost=0 fields={len(h)}"
    )


def test_kill_mid_burst_with_persistence_applies_each_transaction_whole(
    make_server: type[RedisServer], tmp_path: Path
) -> None:
    """Redis persisting every write (AOF, fsync always) is SIGKILLed while 4
    threads stamp 200 runs, then restarted from its AOF. Each timestamp() is
    one transaction (HSET + DEL of the run's two cache keys): in every run the
    timestamp and the deletions are there together or not at all, every
    acknowledged call is there, and each dump is Redis's state of the run or,
    for the one call in flight per thread, the state just before it."""
    server = make_server(extra_args=["--appendonly", "yes", "--appendfsync", "always"]).start()
    rules = tmp_path / "rules.json"
    rules.write_text(
        json.dumps(
            {
                "version": 1,
                "controllers": {"climate": {"keys": ["{wd}/climate.nodb", "{wd}/wepp.nodb"]}},
                "tasks": {"build_climate": {"invalidates": ["climate"]}},
            }
        )
    )
    redisprep.set_rules_path(rules)
    configure_fast(server.url, retries=0, timeout=5.0, connect_timeout=1.0)
    threads_n, per_thread = 4, 50
    runs = [make_run(tmp_path, f"run-{n:03d}") for n in range(threads_n * per_thread)]
    c13 = server.client(13)
    for wd in runs:
        RedisPrep.getInstance(str(wd))
        c13.set(f"{wd}/climate.nodb", "cached")
        c13.set(f"{wd}/wepp.nodb", "cached")
    acked: list[str] = []
    in_flight: dict[str, BaseException] = {}

    def worker(t: int) -> None:
        for wd in runs[t::threads_n]:
            try:
                RedisPrep.__new__(RedisPrep, str(wd)).timestamp(TaskEnum.build_climate)
            except Exception as e:
                in_flight[wd.name] = e
                return
            acked.append(wd.name)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(threads_n)]
    for th in threads:
        th.start()
    try:
        wait_until(lambda: len(acked) >= len(runs) // 3)
        server.kill()
    finally:
        for th in threads:
            th.join(60)
    assert in_flight, "the kill produced no failed call"
    assert all(isinstance(e, redisprep.RedisConnectionError) for e in in_flight.values())
    server.start()  # replays the AOF
    admin, c13 = server.client(), server.client(13)
    half_applied = applied_unacked = 0
    for wd in runs:
        h = redis_hash(admin, wd.name)
        stamped = "timestamps:build_climate" in h
        caches = c13.exists(f"{wd}/climate.nodb", f"{wd}/wepp.nodb")
        half_applied += caches not in (0, 2) or stamped != (caches == 0)
        if wd.name in acked:
            assert stamped, wd.name
        dump = read_dump(wd)
        if dump != h:
            # the reply of an applied transaction was lost: the dump is one state behind
            assert wd.name in in_flight and stamped, wd.name
            assert {k: v for k, v in h.items() if k != "timestamps:build_climate"} == dump
            applied_unacked += 1
        if wd.name not in acked and wd.name not in in_flight:
            assert not stamped and caches == 2, wd.name
    assert half_applied == 0
    print(
        f"\nkill with AOF: runs={len(runs)} acknowledged={len(acked)} "
        f"in_flight_failed={len(in_flight)} applied_but_unacknowledged={applied_unacked} "
        f"half_applied={half_applied} lost=0"
    )
