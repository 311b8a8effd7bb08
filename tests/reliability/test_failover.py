"""Failover on the standalone layout: a primary and a replica (``--replicaof``).
Writes stream over many runs; the replica is promoted (``REPLICAOF NO ONE``)
while the old primary keeps taking writes for 0.3 s, as a failover manager
does during a partition; then the old primary is ``SIGKILL``ed, redisprep is
pointed at the promoted node, and the writes carry on.

With ``min_replicas=1`` every acknowledged timestamp is in the promoted node's
hash. Without it, the count lost in Redis is printed and the next write to each
run reports the divergence from its dump (run with ``-s`` for the figures)."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, Optional

import pytest

import redisprep
from redisprep import RedisPrep, ReplicationError, TaskEnum
from support.redis_server import RedisServer
from support.replicas import promote, start_replica

from .conftest import HANG_BOUND, read_dump, timed, wait_until

RUNS = 40
TASKS = [TaskEnum.build_climate, TaskEnum.build_soils, TaskEnum.build_landuse]
#: Slack on top of ``replica_timeout`` for ReplicationError on a loaded 2-core VM.
EPSILON = 2.0


class Stream:
    """One writer thread stamping the runs in turn with increasing values;
    remembers the last acknowledged value of every (run, field)."""

    def __init__(self, preps: list[RedisPrep]) -> None:
        self.preps = preps
        self.acked: dict[tuple[str, str], int] = {}
        self.errors: dict[str, int] = {}
        self.calls = 0
        #: stop once this many writes are acknowledged (``None``: until ``stop``)
        self.limit: Optional[int] = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        i = 0
        while not self.stop.is_set():
            if self.limit is not None and self.calls >= self.limit:
                return
            prep = self.preps[i % len(self.preps)]
            task = TASKS[(i // len(self.preps)) % len(TASKS)]
            value = 1_700_000_000 + i
            i += 1
            try:
                prep[task] = value
            except redisprep.RedisPrepError as e:
                name = type(e).__name__
                self.errors[name] = self.errors.get(name, 0) + 1
                time.sleep(0.01)
                continue
            self.calls += 1
            self.acked[(prep.run_id, f"timestamps:{task}")] = value

    def __enter__(self) -> Stream:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(HANG_BOUND * 3)


def failover(
    make_server: type[RedisServer], tmp_path: Path, min_replicas: int
) -> tuple[RedisServer, list[RedisPrep], Stream, dict[str, int]]:
    """Run the scenario; returns the promoted node, the runs, the stream and stats()."""
    primary = make_server().start()
    replica = start_replica(make_server, primary)
    opts: dict[str, Any] = {"timeout": 2, "connect_timeout": 1, "retries": 0}
    redisprep.configure(primary.url, min_replicas=min_replicas, replica_timeout=1.0, **opts)
    runs = [tmp_path / "runs" / f"run-{i}" for i in range(RUNS)]
    for d in runs:
        d.mkdir(parents=True)
    preps = [RedisPrep.getInstance(str(d)) for d in runs]
    with Stream(preps) as stream:
        wait_until(lambda: stream.calls >= 3 * RUNS)
        promote(replica)
        before = stream.calls
        time.sleep(0.3)  # the old primary still takes writes
        in_window = stream.calls - before
        primary.kill()
        # the failover manager's URL switch; the replica has no replica of its own
        at_switch = redisprep.stats()
        redisprep.configure(replica.url, **opts)
        # exactly 2 * RUNS more: two of each run's three fields are written again on
        # the promoted node, the third keeps what the failover left (a fast writer
        # polled from here would overwrite all three and hide the loss)
        stream.limit = stream.calls + 2 * RUNS
        wait_until(lambda: stream.calls >= (stream.limit or 0))
    print(
        f"\n  min_replicas={min_replicas}: {stream.calls} acknowledged, "
        f"{in_window} of them while the old primary served alone; errors {stream.errors}"
    )
    after = redisprep.stats()
    return replica, preps, stream, {k: after[k] - at_switch[k] for k in after}


def lost_in_redis(
    client: Any, preps: list[RedisPrep], stream: Stream
) -> list[tuple[str, str, int, Any]]:
    """Acknowledged values Redis (``client``) does not hold, nor a later one."""
    keys = {p.run_id: p.hash_key for p in preps}
    lost = []
    for (run_id, field), value in sorted(stream.acked.items()):
        got = client.hget(keys[run_id], field)
        if got is None or int(got) < value:
            lost.append((run_id, field, value, got))
    return lost


def assert_dumps_hold_acknowledged(preps: list[RedisPrep], stream: Stream) -> None:
    """After one more write to each run, its dump holds every acknowledged value."""
    for prep in preps:
        prep.set_rq_job_id("after_failover", "job-1")
        dumped = read_dump(prep.wd)
        for (run_id, field), value in stream.acked.items():
            if run_id == prep.run_id:
                assert int(dumped[field]) >= value, (run_id, field)


def test_min_replicas_loses_nothing_acknowledged_on_failover(
    make_server: type[RedisServer], tmp_path: Path
) -> None:
    promoted, preps, stream, _ = failover(make_server, tmp_path, min_replicas=1)
    lost = lost_in_redis(promoted.client(0), preps, stream)
    print(f"  lost in the promoted node's hash: {len(lost)} of {len(stream.acked)} fields")
    assert lost == []
    # the writes in the partition window were refused, not acknowledged
    assert (
        stream.errors.get("ReplicationError", 0)
        + stream.errors.get("RedisConnectionError", 0)
        + stream.errors.get("RedisTimeoutError", 0)
        >= 1
    ), stream.errors
    assert_dumps_hold_acknowledged(preps, stream)


def test_without_min_replicas_acknowledged_writes_are_lost_and_detected(
    make_server: type[RedisServer], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="redisprep"):
        promoted, preps, stream, delta = failover(make_server, tmp_path, min_replicas=0)
    lost = lost_in_redis(promoted.client(0), preps, stream)
    runs_hit = {run_id for run_id, *_ in lost}
    print(
        f"  lost in the promoted node's hash: {len(lost)} of {len(stream.acked)} fields, "
        f"{len(runs_hit)} of {RUNS} runs; divergence check fired on "
        f"{delta['divergences']} writes ({delta['divergent_fields']} fields)"
    )
    # the 0.3 s window is only seen by the old primary: its acknowledged writes are gone
    assert lost, "the old primary's writes after the promotion should be missing"
    # ... and the first write to such a run after the switch reports it
    assert delta["divergences"] >= 1
    warned = [r.getMessage() for r in caplog.records if "has lost state" in r.getMessage()]
    assert any(f'"{run_id}"' in w for w in warned for run_id in runs_hit), warned[:3]


def test_replication_error_within_replica_timeout(
    make_server: type[RedisServer], run_dir: Path
) -> None:
    primary = make_server().start()
    replica = start_replica(make_server, primary)
    redisprep.configure(primary.url, min_replicas=1, replica_timeout=0.5, timeout=2)
    prep = RedisPrep.getInstance(str(run_dir))
    prep[TaskEnum.build_climate] = 100  # acknowledged by the replica
    before = redisprep.stats()["replication_errors"]
    sleeper = threading.Thread(
        target=lambda: replica.client(socket_timeout=10).execute_command("DEBUG", "SLEEP", "3")
    )
    sleeper.start()
    try:
        time.sleep(0.1)  # the replica is asleep: it cannot acknowledge
        elapsed, err = timed(lambda: prep.__setitem__(TaskEnum.build_climate, 200))
    finally:
        sleeper.join()
    print(f"\n  ReplicationError after {elapsed:.3f} s (replica_timeout 0.5 s)")
    assert isinstance(err, ReplicationError), err
    assert isinstance(err, redisprep.RedisPrepError)
    assert (err.acknowledged, err.required) == (0, 1)
    assert "0 of 1" in str(err) and "not yet safe" in str(err)
    assert elapsed < 0.5 + EPSILON
    # as documented: applied on the primary, and the dump is written as usual
    assert primary.client(0).hget(run_dir.name, "timestamps:build_climate") == "200"
    assert read_dump(run_dir)["timestamps:build_climate"] == "200"
    assert redisprep.stats()["replication_errors"] == before + 1
    # once the replica is back, writes are acknowledged again
    wait_until(lambda: primary.client(0).execute_command("WAIT", 1, 100) == 1)
    prep[TaskEnum.build_climate] = 300
    assert replica.client(0).hget(run_dir.name, "timestamps:build_climate") == "300"


@pytest.mark.parametrize(
    "kwargs, env",
    [
        ({"min_replicas": -1}, {}),
        ({"min_replicas": 1, "replica_timeout": 0}, {}),
        ({"min_replicas": 1, "replica_timeout": float("nan")}, {}),
        ({}, {"REDISPREP_MIN_REPLICAS": "one"}),
        ({}, {"REDISPREP_REPLICA_TIMEOUT": "-2"}),
    ],
)
def test_bad_replication_settings_are_config_errors(
    private_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
    kwargs: dict[str, Any],
    env: dict[str, str],
) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(redisprep.ConfigError):
        redisprep.configure(private_server.url, **kwargs)


def test_replication_settings_from_the_environment(
    private_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert redisprep.connection_info()["min_replicas"] == 0  # off by default
    monkeypatch.setenv("REDISPREP_MIN_REPLICAS", "2")
    monkeypatch.setenv("REDISPREP_REPLICA_TIMEOUT", "0.25")
    redisprep.configure(private_server.url)
    info = redisprep.connection_info()
    assert (info["min_replicas"], info["replica_timeout"]) == (2, 0.25)


def test_divergence_check_warns_counts_and_never_resurrects(
    run_dir: Path, r0: Any, caplog: pytest.LogCaptureFixture
) -> None:
    prep = RedisPrep.getInstance(str(run_dir))
    prep[TaskEnum.build_climate] = 20
    prep[TaskEnum.build_soils] = 20
    prep.set_rq_job_id("build_soils_rq", "job-1")
    # Redis loses one field and holds another older; the dump still has both
    r0.hdel(run_dir.name, "timestamps:build_soils")
    r0.hset(run_dir.name, "timestamps:build_climate", "10")
    before = redisprep.stats()
    with caplog.at_level(logging.WARNING, logger="redisprep"):
        prep[TaskEnum.build_landuse] = 30
    after = redisprep.stats()
    assert after["divergences"] - before["divergences"] == 1
    assert after["divergent_fields"] - before["divergent_fields"] == 2
    (msg,) = [r.getMessage() for r in caplog.records if "has lost state" in r.getMessage()]
    assert f'"{run_dir.name}"' in msg
    assert "timestamps:build_soils" in msg and "timestamps:build_climate" in msg
    # detected, not re-applied: the dump is now Redis's state
    assert read_dump(run_dir) == r0.hgetall(run_dir.name)
    assert "timestamps:build_soils" not in read_dump(run_dir)
    # writes through redisprep never look like divergence, deletes included
    for write in [
        lambda: prep.remove_timestamp(TaskEnum.build_landuse),
        lambda: prep.remove_all_timestamp(),
        lambda: prep.clear_archive_job_id(),
        lambda: prep.set_rq_job_id("build_soils_rq", "job-2"),
    ]:
        write()
    assert redisprep.stats()["divergences"] == after["divergences"]
    # a delete outside the lock (legacy, or prep.redis.hdel then dump()) looks the
    # same as a loss while its dump is pending: warned about, never put back
    prep.redis.hdel(prep.run_id, "rq:build_soils_rq")
    prep[TaskEnum.build_rusle] = 40
    assert redisprep.stats()["divergences"] == after["divergences"] + 1
    assert r0.hget(run_dir.name, "rq:build_soils_rq") is None
    assert "rq:build_soils_rq" not in read_dump(run_dir)
