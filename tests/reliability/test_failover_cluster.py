"""Failover on the cluster layout, strict: the 3+3 cluster fixture's topology
(3 masters, 3 replicas), a stream of writes over many runs, the replica of one
master promoted (``CLUSTER FAILOVER TAKEOVER``) while the old master keeps
taking writes for 0.3 s, then the old master ``SIGKILL``ed; writes carry on.
With ``min_replicas=1`` every acknowledged timestamp is in the cluster's hash
(Redis itself, not the dump)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import redisprep
from redisprep import RedisPrep
from support.cluster import LocalCluster

from .conftest import wait_until
from .test_failover import RUNS, Stream, assert_dumps_hold_acknowledged, lost_in_redis

pytestmark = pytest.mark.slow


def test_cluster_failover_with_min_replicas_loses_nothing_acknowledged(tmp_path: Path) -> None:
    # A cluster of its own: this test kills a master (the shared one stays intact).
    cluster = LocalCluster(node_timeout_ms=1000).start()
    try:
        cluster.wait_replicas()
        opts = {"connect_timeout": 1, "timeout": 2}
        redisprep.configure(cluster.url, min_replicas=1, replica_timeout=1.0, **opts)
        runs = [tmp_path / "runs" / f"run-{i}" for i in range(RUNS)]
        for d in runs:
            d.mkdir(parents=True)
        preps = [RedisPrep.getInstance(str(d)) for d in runs]
        victim = cluster.master_of(preps[0].hash_key)
        port = int(victim.client().info("replication")["slave0"]["port"])
        replica = next(n for n in cluster.nodes if n.port == port)
        on_victim = [p for p in preps if cluster.master_of(p.hash_key) is victim]
        with Stream(preps) as stream:
            wait_until(lambda: stream.calls >= 3 * RUNS)
            replica.client(socket_timeout=5).execute_command("CLUSTER", "FAILOVER", "TAKEOVER")
            before = stream.calls
            time.sleep(0.3)  # the old master still takes writes
            in_window = stream.calls - before
            victim.kill()
            cluster.wait_ok(60)
            # carry on; the promoted master has no replica left to acknowledge
            redisprep.configure(cluster.url, **opts)
            after_switch = stream.calls
            wait_until(lambda: stream.calls >= after_switch + 2 * RUNS, deadline=60)
        lost = lost_in_redis(cluster.client(), preps, stream)
        print(
            f"\n  cluster, min_replicas=1: {stream.calls} acknowledged ({in_window} while the "
            f"old master served alone), {len(on_victim)} of {RUNS} runs on the failed master; "
            f"errors {stream.errors}; lost in Redis: {len(lost)} of {len(stream.acked)} fields"
        )
        assert lost == []
        assert_dumps_hold_acknowledged(preps, stream)
    finally:
        redisprep.configure(os.environ["REDIS_URL"])
        cluster.cleanup()
