"""fork(), threads and the GIL (issue 3).

RQ forks a work horse per job from a parent that already holds pooled
connections. A child must open its own connections and never send a byte on
(or read a reply from) a socket it inherited: otherwise parent and child would
read each other's replies. Every check here is observable from the server:
``MONITOR`` shows which client address sent each command, ``CLIENT LIST``
maps addresses to client ids, and ``/proc`` tells which sockets a process
opened itself.
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from reliability.conftest import Child, wait_until

import redisprep
from redisprep import RedisPrep, TaskEnum
from support.redis_server import RedisServer
from support.sockets import ids_of_ports, tcp_ports

ROUNDS = 60


class Monitor:
    """Record ``(client port, command)`` of every command the server runs."""

    STOP = "__redisprep_test_stop_monitor__"

    def __init__(self, server: RedisServer) -> None:
        self.client = server.client()
        self._stopper = server.client()
        self._stopper.ping()  # connected now: its socket counts as the parent's
        self.seen: list[tuple[int, str]] = []
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._ready.wait(10)

    def _run(self) -> None:
        with self.client.monitor() as m:
            self._ready.set()
            for entry in m.listen():
                command = str(entry.get("command", ""))
                if self.STOP in command:
                    return
                port = str(entry.get("client_port") or "")
                self.seen.append((int(port) if port.isdigit() else -1, command))

    def stop(self) -> list[tuple[int, str]]:
        self._stopper.echo(self.STOP)
        self._thread.join(10)
        assert not self._thread.is_alive()
        return self.seen


#: The sockets to Redis this process held when it was forked (set in the child).
_INHERITED: set[int] = set()


def _at_fork_start(redis_port: int) -> None:
    """First thing in a child: remember the sockets it inherited from its parent."""
    _INHERITED.clear()
    _INHERITED.update(tcp_ports(os.getpid(), redis_port))


def hammer(prep: RedisPrep, tag: str, redis_port: int) -> dict[str, Any]:
    """A child's work: write and read back its own values on its own run."""
    wrong = 0
    for i in range(ROUNDS):
        prep.set_rq_job_id("job", f"{tag}-{i}")
        prep[f"step{i % 5}"] = i
        wrong += prep.get_rq_job_id("job") != f"{tag}-{i}"
        wrong += prep[f"step{i % 5}"] != i
        wrong += prep.get_rq_job_ids() != {"job": f"{tag}-{i}"}
    prep.timestamp(TaskEnum.build_climate)
    wrong += prep[TaskEnum.build_climate] is None
    raw = redis.Redis(host="127.0.0.1", port=redis_port, decode_responses=True)
    try:
        raw.ping()
        own = tcp_ports(os.getpid(), redis_port) - _INHERITED  # native pool + this client
        own_ids = ids_of_ports(raw, own)
    finally:
        raw.close()
    return {
        "pid": os.getpid(),
        "wrong": wrong,
        "ports": sorted(own),
        "ids": sorted(own_ids),
        "connects": redisprep.stats()["connects"],
    }


def _hammer_job(args: tuple[RedisPrep, str, int]) -> dict[str, Any]:
    return hammer(*args)


@pytest.fixture
def server(make_server: type[RedisServer]) -> Iterator[RedisServer]:
    """A private server (MONITOR sees only this test's traffic)."""
    s = make_server().start()
    redisprep.configure(s.url)
    yield s


def _warm_parent(run_dir: Path) -> RedisPrep:
    """A parent holding several pooled native connections and a ``prep.redis`` pool."""
    parent = RedisPrep.getInstance(str(run_dir))
    barrier = threading.Barrier(4)

    def use() -> None:
        barrier.wait()
        for i in range(20):
            parent.set_rq_job_id("parent", f"p-{i}")
            parent.get_rq_job_ids()  # reads run in parallel: several pooled connections

    threads = [threading.Thread(target=use) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert parent.redis.hget(parent.run_id, "attrs:loaded") == "true"
    return parent


def _check_children(
    results: list[dict[str, Any]],
    monitor_log: list[tuple[int, str]],
    parent_ports: set[int],
    parent_ids: set[int],
) -> None:
    all_ids: set[int] = set()
    for out in results:
        assert out["wrong"] == 0, out
        assert out["pid"] != os.getpid()
        ports, ids = set(out["ports"]), set(out["ids"])
        assert ports and not ports & parent_ports, out
        assert ids and not ids & parent_ids, out  # its own server-side clients
        assert not ids & all_ids, out  # and nobody else's
        all_ids |= ids
    child_ports = {p for out in results for p in out["ports"]}
    for port, command in monitor_log:
        # no command from an inherited socket, every child command from its own sockets
        assert port not in parent_ports, (port, command)
        if port >= 0:
            assert port in child_ports, (port, command)
    for out in results:
        mine = [c for p, c in monitor_log if p in set(out["ports"])]
        assert sum("rq:job" in c for c in mine) >= 2 * ROUNDS  # the child's traffic is its own


def test_os_fork_children_never_touch_the_parents_sockets(
    server: RedisServer, run_dir: Path
) -> None:
    parent = _warm_parent(run_dir)
    raw = server.client()
    raw.ping()
    gc.collect()  # close stray unreferenced clients: the parent's sockets are then all live
    parent_ports = tcp_ports(os.getpid(), server.port)
    parent_ids = ids_of_ports(raw, parent_ports)
    assert len(parent_ids) >= 2  # native pooled connection(s) and prep.redis
    connects = redisprep.stats()["connects"]
    monitor = Monitor(server)
    parent_ports = tcp_ports(os.getpid(), server.port)  # now with the MONITOR socket

    kids = []
    for k in range(3):
        wd = run_dir.parent / f"child-{k}"
        wd.mkdir()

        def body(wd: Path = wd, k: int = k) -> dict[str, Any]:
            _at_fork_start(server.port)
            out = hammer(RedisPrep.getInstance(str(wd)), f"c{k}", server.port)
            # the parent's own instance works in the child too, on the child's connections
            parent.set_rq_job_id(f"child{k}", "hello")
            out["wrong"] += parent.get_rq_job_id(f"child{k}") != "hello"
            return out

        kids.append(Child(body))
    results = []
    for kid in kids:
        status, out = kid.result(60)
        assert status == 0, out
        results.append(out)
    log = monitor.stop()
    _check_children(results, log, parent_ports, parent_ids)
    assert all(out["connects"] > connects for out in results)

    # the parent's pool survived: same connections, replies in step, no reconnect
    assert parent_ids <= {int(c["id"]) for c in raw.client_list()}
    for i in range(50):
        parent.set_rq_job_id("parent", f"after-{i}")
        assert parent.get_rq_job_id("parent") == f"after-{i}"
    parent.timestamp(TaskEnum.build_soils)
    assert parent[TaskEnum.build_soils] is not None
    assert parent.get_rq_job_id("child2") == "hello"
    assert parent.redis.hget(parent.run_id, "rq:parent") == "after-49"
    assert redisprep.stats()["connects"] == connects


def test_multiprocessing_fork_pool_while_the_parent_keeps_working(
    server: RedisServer, run_dir: Path
) -> None:
    parent = _warm_parent(run_dir)
    raw = server.client()
    raw.ping()  # connected before the parent's sockets are listed
    preps = []
    for k in range(4):
        wd = run_dir.parent / f"mp-{k}"
        wd.mkdir()
        preps.append(RedisPrep.getInstance(str(wd)))
    monitor = Monitor(server)
    parent_ports = tcp_ports(os.getpid(), server.port)
    parent_ids = ids_of_ports(raw, parent_ports)
    # the instances travel pickled, as RQ passes job arguments
    jobs = [(p, f"mp{k}", server.port) for k, p in enumerate(preps)]
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2, initializer=_at_fork_start, initargs=(server.port,)) as pool:
        pending = pool.map_async(_hammer_job, jobs)
        i = 0
        while not pending.ready() or i < 20:  # the parent keeps using its own pool meanwhile
            parent.set_rq_job_id("parent", f"during-{i}")
            assert parent.get_rq_job_id("parent") == f"during-{i}"
            i += 1
        results = pending.get(60)
    log = monitor.stop()
    parent_traffic = [c for p, c in log if p in parent_ports]
    assert sum("during-" in c for c in parent_traffic) >= i  # the parent used its sockets
    child_log = [(p, c) for p, c in log if p not in parent_ports]
    # two pool workers ran four jobs: group results per worker process
    by_pid: dict[int, dict[str, Any]] = {}
    for out in results:
        merged = by_pid.setdefault(
            out["pid"], {"pid": out["pid"], "wrong": 0, "ports": [], "ids": []}
        )
        merged["wrong"] += out["wrong"]
        merged["ports"] = sorted(set(merged["ports"]) | set(out["ports"]))
        merged["ids"] = sorted(set(merged["ids"]) | set(out["ids"]))
    _check_children(list(by_pid.values()), child_log, parent_ports, parent_ids)
    for k in range(4):
        assert raw.hget(f"mp-{k}", "rq:job") == f"mp{k}-{ROUNDS - 1}"


def test_threads_share_one_instance(run_dir: Path, r0: redis.Redis[str]) -> None:
    prep = RedisPrep.getInstance(str(run_dir))
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        try:
            for i in range(40):
                prep.set_rq_job_id(f"t{t}", f"{t}-{i}")
                prep[f"t{t}"] = i
                assert prep.get_rq_job_id(f"t{t}") == f"{t}-{i}"
                assert prep[f"t{t}"] == i
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    h = r0.hgetall("abc-def")
    assert all(h[f"rq:t{t}"] == f"{t}-39" and h[f"timestamps:t{t}"] == "39" for t in range(8))
    assert json.loads((run_dir / "redisprep.dump").read_text()) == h  # last write wins on disk


def test_the_gil_is_released_while_a_call_waits_for_redis(
    server: RedisServer, run_dir: Path
) -> None:
    """A call blocked on Redis (writes paused with ``CLIENT PAUSE WRITE``) must
    not stop other Python threads: a counter thread keeps counting while the
    server reports our client blocked, and the write lands once unpaused."""
    redisprep.configure(server.url, timeout=5)
    prep = RedisPrep.getInstance(str(run_dir))
    raw = server.client()
    raw.execute_command("CLIENT", "PAUSE", "30000", "WRITE")
    outcome: list[Any] = []

    def blocked_call() -> None:
        try:
            prep[TaskEnum.build_climate] = 1234
            outcome.append("ok")
        except BaseException as e:
            outcome.append(e)

    caller = threading.Thread(target=blocked_call)
    try:
        caller.start()
        wait_until(lambda: any("b" in c["flags"] for c in raw.client_list()), 10)
        counter = 0
        stop = threading.Event()

        def count() -> None:
            nonlocal counter
            while not stop.is_set() and counter < 200_000:
                counter += 1

        counting = threading.Thread(target=count)
        counting.start()
        counting.join(30)
        stop.set()
        # the counter finished while the call was still inside its Redis round trip
        assert counter == 200_000
        assert caller.is_alive() and outcome == []
        assert any("b" in c["flags"] for c in raw.client_list())
        assert raw.hget("abc-def", "timestamps:build_climate") is None
    finally:
        raw.execute_command("CLIENT", "UNPAUSE")
        caller.join(10)
    assert outcome == ["ok"]
    assert prep[TaskEnum.build_climate] == 1234
