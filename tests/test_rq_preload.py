"""``redisprep.rq.preload()``: a worker parent loads redisprep, its settings and
rules before RQ forks; every work horse finds them loaded and still opens its own
connection. Checked on a real forking RQ worker and a private redis-server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

import redisprep
import redisprep.rq
from redisprep import RedisPrep
from support.redis_server import RedisServer

TESTS = Path(__file__).resolve().parent
rq = pytest.importorskip("rq")


@pytest.mark.timeout(120)
def test_horse_of_a_preloaded_worker_opens_its_own_connection(
    private_server: RedisServer, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.json"  # a rules file of this test's own
    packaged = Path(redisprep.__file__).parent / "rules" / "cache_invalidation_rules.json"
    rules.write_text(packaged.read_text())
    wds = []
    for i in range(2):
        wd = tmp_path / f"run{i}"
        wd.mkdir()
        RedisPrep.getInstance(str(wd)).timestamp("build_landuse")
        wds.append(str(wd))
    rq_conn = redis.Redis.from_url(private_server.url, db=9)
    q = rq.Queue("preload", connection=rq_conn)
    jobs = [q.enqueue("support.preload_worker.stamp", wd, private_server.port) for wd in wds]
    out = tmp_path / "parent.json"
    env = {**os.environ, "REDIS_URL": private_server.url, "REDISPREP_RULES": str(rules)}
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "support.preload_worker", private_server.url, "preload"]
    worker = subprocess.run(
        [*cmd, wds[0], str(out)],
        cwd=TESTS,
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert worker.returncode == 0, worker.stderr[-3000:]
    parent = json.loads(out.read_text())
    assert parent["rules"] == str(rules)
    assert parent["connection"]["prep_db"] == 0
    assert parent["ports"], "the parent held a pooled connection when RQ forked"
    for job in jobs:
        job.refresh()
        assert job.get_status() == "finished", job.exc_info
        got = job.return_value()
        assert got["pid"] != parent["pid"]  # a forked horse ran it
        assert got["preloaded"] and got["rules"] == str(rules)
        assert set(parent["ports"]) <= set(got["before"])  # inherited, never used:
        own = set(got["after"]) - set(got["before"])
        assert own and got["connects"] >= 1, got  # the horse connected itself
        # while the horse ran, the parent's connection still carried the parent's
        # last command (HGET), and the horse's new one its timestamp (MULTI/EXEC)
        assert all(got["last_command"][str(p)] == "hget" for p in parent["ports"]), got
        assert {got["last_command"][str(p)] for p in own} == {"exec"}, got
    # and the timestamps the horses wrote are there
    for wd in wds:
        assert RedisPrep.getInstance(wd)["build_climate"] is not None


def test_preload_imports_modules_and_reports_rules() -> None:
    loaded = redisprep.rq.preload("redisprep.task")
    active = redisprep.active_rules()
    assert active is not None and loaded["rules"] == active.source
    assert loaded["connection"] == redisprep.connection_info()
    with pytest.raises(ModuleNotFoundError):
        redisprep.rq.preload("redisprep_no_such_module")
