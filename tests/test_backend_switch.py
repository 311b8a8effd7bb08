"""No mid-call layout switch (issue 15): while one thread streams ``timestamp()``
calls, another thread alternates ``configure(url=<standalone>)`` and
``configure(url=<cluster>)``. Each call must run wholly on one layout: its
hash key, its cache keys and the server it talks to all from the same one.

A call that mixed would leave evidence: a cluster-style key (``prep:{run}``)
on the standalone server, a bare-run-id hash on the cluster, a sentinel
deleted where only the other layout's keys live, a CROSSSLOT error (standalone
cache keys sent with a cluster hash key), or a timestamp found in no layout's
hash or in both. Every task of the rules file invalidates one controller, so
every call carries cache keys."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import redisprep
from redisprep import RedisPrep
from support.cluster import LocalCluster
from support.layouts import Layout

pytestmark = pytest.mark.slow

RUNS = 6
TASKS = 400  # RUNS * TASKS distinct (run, task) pairs: each timestamp is identifiable
STREAM_SECONDS = 5.0


def rules_file(tmp_path: Path) -> Path:
    doc = {
        "version": 1,
        "db": 13,
        "controllers": {"c": {"keys": ["{wd}/c.nodb"]}},
        "tasks": {f"t{k}": {"invalidates": ["c"]} for k in range(TASKS)},
    }
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(doc))
    return path


@dataclass
class Stream:
    """What the two threads did."""

    ok: list[tuple[str, str]] = field(default_factory=list)  # (run_id, task) that returned
    failed: list[str] = field(default_factory=list)
    switches: int = 0
    stop: threading.Event = field(default_factory=threading.Event)


def stream_timestamps(preps: list[RedisPrep], s: Stream, start: threading.Barrier) -> None:
    start.wait()
    deadline = time.monotonic() + STREAM_SECONDS
    try:
        for k in range(TASKS):
            for prep in preps:
                if time.monotonic() > deadline:
                    return
                task = f"t{k}"
                try:
                    prep.timestamp(task)
                except redisprep.RedisPrepError as e:
                    s.failed.append(f"{prep.run_id} {task}: {type(e).__name__}: {e}")
                else:
                    s.ok.append((prep.run_id, task))
    finally:
        s.stop.set()


def toggle_layouts(urls: list[str], s: Stream, start: threading.Barrier) -> None:
    start.wait()
    while not s.stop.is_set():
        for url in urls:
            redisprep.configure(url=url)
            s.switches += 1
            time.sleep(0)  # let the streaming thread take the GIL between switches


def test_configure_from_another_thread_never_mixes_layouts(
    redis_info: Any, local_cluster: LocalCluster, tmp_path: Path
) -> None:
    standalone = Layout("standalone", redis_info.url)
    cluster = Layout("cluster", local_cluster.url, local_cluster)
    s0, s13, rc = standalone.client(0), standalone.client(13), cluster.client()
    try:
        cluster.flush()
        standalone.flush()
        redisprep.configure(url=standalone.url)
        redisprep.set_rules_path(rules_file(tmp_path))
        # run folders that do not exist: no dump, so no recovery copies fields across layouts
        wds = [tmp_path / "absent" / f"mix-{r}" for r in range(RUNS)]
        preps = [RedisPrep(str(wd)) for wd in wds]
        sentinels0: list[str] = []  # standalone DB 0: no cache key may be deleted there
        sentinels13: list[str] = []  # standalone DB 13: only standalone-style keys
        sentinels_c: list[str] = []  # cluster: only cluster-style keys
        legit13: list[str] = []
        legit_c: list[str] = []
        for wd in wds:
            rendered = f"{wd}/c.nodb"
            on_cluster = cluster.cache_key(wd.name, rendered)
            sentinels0 += [rendered, on_cluster]
            sentinels13.append(on_cluster)
            sentinels_c.append(rendered)
            legit13.append(rendered)
            legit_c.append(on_cluster)
        for k in sentinels0:
            s0.set(k, "sentinel")
        for k in sentinels13:
            s13.set(k, "sentinel")
        for k in legit13:
            s13.set(k, "cached")
        for k in sentinels_c + legit_c:
            rc.set(k, "sentinel" if k in sentinels_c else "cached")

        s = Stream()
        start = threading.Barrier(2)
        threads = [
            threading.Thread(target=stream_timestamps, args=(preps, s, start)),
            threading.Thread(target=toggle_layouts, args=([standalone.url, cluster.url], s, start)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(STREAM_SECONDS + 30)
        assert not any(t.is_alive() for t in threads), "a thread hung"
        redisprep.configure(url=standalone.url)

        problems: list[str] = [f"call failed: {f}" for f in s.failed[:5]]
        if len(s.failed) > 5:
            problems.append(f"... {len(s.failed)} calls failed in all")
        run_ids = {wd.name for wd in wds}
        stray0 = set(s0.scan_iter(count=1000)) - run_ids - set(sentinels0)
        stray13 = set(s13.scan_iter(count=1000)) - set(legit13) - set(sentinels13)
        stray_c = set(rc.scan_iter(count=1000, target_nodes="primaries")) - (
            {cluster.hash_key(r) for r in run_ids} | set(legit_c) | set(sentinels_c)
        )
        problems += [f"stray key on the standalone DB 0: {k!r}" for k in sorted(stray0)]
        problems += [f"stray key on the standalone DB 13: {k!r}" for k in sorted(stray13)]
        problems += [f"stray key on the cluster: {k!r}" for k in sorted(stray_c)]
        problems += [f"standalone DB 0 lost {k!r}" for k in sentinels0 if s0.get(k) != "sentinel"]
        problems += [
            f"standalone DB 13 lost {k!r}" for k in sentinels13 if s13.get(k) != "sentinel"
        ]
        problems += [f"the cluster lost {k!r}" for k in sentinels_c if rc.get(k) != "sentinel"]

        on = {"standalone": 0, "cluster": 0}
        for run_id, task in s.ok:
            f = f"timestamps:{task}"
            where = [
                name
                for name, present in [
                    ("standalone", s0.hexists(run_id, f)),
                    ("cluster", rc.hexists(cluster.hash_key(run_id), f)),
                ]
                if present
            ]
            if len(where) != 1:
                problems.append(f"{run_id} {f} is in {where or 'no layout'}")
            else:
                on[where[0]] += 1
        assert not problems, (
            f"{len(s.ok)} calls returned, {s.switches} switches; "
            f"{len(problems)} problem(s):\n" + "\n".join(problems[:40])
        )
        # not vacuous: the stream really ran on both layouts, with switches between
        assert on["standalone"] > 0 and on["cluster"] > 0, on
        assert s.switches >= 100, s.switches
    finally:
        redisprep.configure(url=redis_info.url)
        redisprep.set_rules_path(None)
        standalone.close()
        cluster.close()
