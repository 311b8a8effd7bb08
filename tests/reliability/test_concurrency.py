"""Concurrency: fork() with open pooled connections, many writers on one run
with a reader loading the dump, and many runs in parallel.

Counts are sized for a debug build on 2 busy cores (see docs/RELIABILITY.md)."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable

import redis

import redisprep
from redisprep import RedisPrep, TaskEnum
from support.legacy_ref import LegacyRedisPrep

from .conftest import Child, read_dump, redis_hash, temp_files

PROCS, THREADS = 2, 8
#: timestamp() calls per thread on the shared run (each followed by a
#: remove_timestamp of the previous one, so the hash stays small)
CALLS = int(os.environ.get("REDISPREP_RELIABILITY_CALLS", "500"))


def test_fork_children_use_their_own_connections(
    run_dir: Path, redis_info: Any, r0: redis.Redis[str]
) -> None:
    """RQ's pattern: a parent with pooled connections (native and ``prep.redis``)
    forks children that use RedisPrep at the same time as the parent."""
    parent = RedisPrep.getInstance(str(run_dir))
    for i in range(5):  # several pooled connections in use before the fork
        parent.set_rq_job_id("parent", f"p-{i}")
    assert parent.redis.hget("abc-def", "rq:parent") == "p-4"
    before_fork = redisprep.stats()["connects"]
    children_n, rounds = 4, 40

    def child(k: int) -> Callable[[], Any]:
        def body() -> Any:
            wd = str(run_dir.parent / f"child-{k}")
            os.mkdir(wd)
            mine = RedisPrep.getInstance(wd)
            shared = RedisPrep.__new__(RedisPrep, str(run_dir))
            wrong = 0
            for i in range(rounds):
                mine.set_rq_job_id("job", f"c{k}-{i}")
                shared.set_rq_job_id(f"child{k}", f"c{k}-{i}")
                wrong += mine.get_rq_job_id("job") != f"c{k}-{i}"
                wrong += shared.get_rq_job_id(f"child{k}") != f"c{k}-{i}"
                wrong += mine.redis.hget(f"child-{k}", "rq:job") != f"c{k}-{i}"
                mine.timestamp(f"step{i}")
                wrong += mine[f"step{i}"] is None
            return {"wrong": wrong, "connects": redisprep.stats()["connects"]}

        return body

    kids = [Child(child(k)) for k in range(children_n)]
    parent_wrong = 0
    i = 0
    while i < 200:  # the parent keeps using its pooled connections meanwhile
        parent.set_rq_job_id("parent", f"p-{i}")
        parent_wrong += parent.get_rq_job_id("parent") != f"p-{i}"
        parent_wrong += parent.redis.hget("abc-def", "rq:parent") != f"p-{i}"
        i += 1
    results = [kid.result(90) for kid in kids]
    for k, (status, out) in enumerate(results):
        assert status == 0, out
        assert out["wrong"] == 0, (k, out)
        # each child opened connections of its own (inherited ones are never used)
        assert out["connects"] > before_fork
    assert parent_wrong == 0
    for k in range(children_n):
        h = r0.hgetall(f"child-{k}")
        assert h["rq:job"] == f"c{k}-{rounds - 1}"
        assert sum(f.startswith("timestamps:step") for f in h) == rounds
        assert read_dump(run_dir.parent / f"child-{k}") == redis_hash(r0, f"child-{k}")
    shared = r0.hgetall("abc-def")
    assert all(shared[f"rq:child{k}"] == f"c{k}-{rounds - 1}" for k in range(children_n))
    parent.timestamp("after_children")
    assert read_dump(run_dir) == redis_hash(r0, "abc-def")


# -- many writers, one run, one reader ---------------------------------------


def reader(dump: Path, stop: Path) -> Callable[[], dict[str, Any]]:
    """Load the dump in a loop: count torn/invalid reads and lost updates.

    Writers stamp ``c<p>_<t>_<i>`` then remove ``c<p>_<t>_<i-1>``: in any
    state Redis ever had, each writer thread has one or two consecutive
    indices, and its highest index only grows. A file going back to an older
    state (a lost update) shows as a smaller highest index."""

    def body() -> dict[str, Any]:
        reads = invalid = regressions = window = locked = missing = 0
        best: dict[str, int] = {}
        sample = ""
        while not stop.exists():
            try:
                text = dump.read_bytes()
            except FileNotFoundError:
                missing += 1
                continue
            try:
                data = json.loads(text)
                if not isinstance(data, dict):
                    raise ValueError("not an object")
            except ValueError:
                invalid += 1
                sample = sample or repr(text[:80])
                continue
            reads += 1
            seen: dict[str, list[int]] = {}
            for field in data:
                if field.startswith("locked:"):
                    locked += 1
                if field.startswith("timestamps:c"):
                    writer, _, idx = field[len("timestamps:") :].rpartition("_")
                    seen.setdefault(writer, []).append(int(idx))
            for writer, idxs in seen.items():
                top = max(idxs)
                if top < best.get(writer, -1):
                    regressions += 1
                if len(idxs) > 2 or (len(idxs) == 2 and max(idxs) - min(idxs) != 1):
                    window += 1
                best[writer] = max(best.get(writer, -1), top)
            regressions += sum(1 for w in best if w not in seen)
        return {
            "reads": reads,
            "invalid": invalid,
            "regressions": regressions,
            "window": window,
            "locked": locked,
            "missing": missing,
            "sample": sample,
        }

    return body


def writers(
    p: int, go: Path, calls: int, make: Callable[[], Any], remove: bool = True
) -> Callable[[], dict[str, Any]]:
    def body() -> dict[str, Any]:
        errors: list[str] = []

        def thread(t: int) -> None:
            prep = make()
            try:
                for i in range(calls):
                    prep.timestamp(f"c{p}_{t}_{i}")
                    if remove and i:
                        prep.remove_timestamp(f"c{p}_{t}_{i - 1}")
            except Exception as e:
                errors.append(repr(e))

        while not go.exists():
            time.sleep(0.001)
        t0 = time.monotonic()
        threads = [threading.Thread(target=thread, args=(t,)) for t in range(THREADS)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        return {"errors": errors, "seconds": time.monotonic() - t0}

    return body


def run_load(run_dir: Path, calls: int, make: Callable[[], Any]) -> tuple[list[Any], Any]:
    go, stop = run_dir.parent / "go", run_dir.parent / "stop"
    procs = [Child(writers(p, go, calls, make)) for p in range(PROCS)]
    read = Child(reader(run_dir / "redisprep.dump", stop))
    go.touch()
    results = [proc.result(110) for proc in procs]
    stop.touch()
    status, seen = read.result(30)
    assert status == 0, seen
    go.unlink()
    stop.unlink()
    return results, seen


def test_many_writers_one_run_no_torn_read_no_lost_update(
    run_dir: Path, r0: redis.Redis[str]
) -> None:
    wd = str(run_dir)
    RedisPrep.getInstance(wd)
    r0.hset("abc-def", "locked:wepp.nodb", "true")  # NoDb's lock field: never dumped
    results, seen = run_load(run_dir, CALLS, lambda: RedisPrep.__new__(RedisPrep, wd))
    for status, out in results:
        assert status == 0, out
        assert out["errors"] == [], out["errors"][:3]
    h = redis_hash(r0, "abc-def")
    assert read_dump(run_dir) == h  # the file ends at the last transaction's state
    assert temp_files(run_dir) == []
    expected = {f"timestamps:c{p}_{t}_{CALLS - 1}" for p in range(PROCS) for t in range(THREADS)}
    assert {f for f in h if f.startswith("timestamps:c")} == expected
    assert seen["invalid"] == 0, seen["sample"]
    assert seen["regressions"] == 0 and seen["window"] == 0 and seen["locked"] == 0, seen
    assert seen["reads"] > 10, seen  # the reader really overlapped the writers
    secs = max(out["seconds"] for _, out in results)
    print(
        f"\nredisprep: {PROCS}x{THREADS}x{CALLS} timestamp() + as many remove_timestamp() "
        f"in {secs:.1f} s; reader: {seen}"
    )


def test_legacy_under_the_same_load_contrast(
    tmp_path: Path, redis_info: Any, r0: redis.Redis[str]
) -> None:
    """The pure-Python legacy class under the same load. It writes the dump in
    place (``open(..., 'w')`` truncates first) and unserialised, so readers
    see empty or torn files, and the file goes back to older states (lost
    updates). Measured: thousands of each per run, so the test asserts that
    anomalies happen at all."""
    run_dir = tmp_path / "runs" / "legacy-run"
    run_dir.mkdir(parents=True)
    wd = str(run_dir)
    url = redis_info.url
    LegacyRedisPrep.getInstance(wd, r0)
    results, seen = run_load(
        run_dir,
        CALLS,
        lambda: LegacyRedisPrep(wd, redis.Redis.from_url(url, decode_responses=True)),
    )
    for status, out in results:
        assert status == 0, out
    h = redis_hash(r0, "legacy-run")
    try:
        final_equal = read_dump(run_dir) == h
    except ValueError:
        final_equal = False
    anomalies = seen["invalid"] + seen["regressions"] + seen["window"] + (not final_equal)
    print(
        f"\nlegacy: {PROCS}x{THREADS}x{CALLS}: reader {seen}, final dump == Redis: "
        f"{final_equal}, anomalies {anomalies}"
    )
    assert anomalies > 0, seen


# -- many runs ---------------------------------------------------------------

RUNS = int(os.environ.get("REDISPREP_RELIABILITY_RUNS", "1000"))
TASKS = [
    TaskEnum.fetch_dem,
    TaskEnum.build_channels,
    TaskEnum.set_outlet,
    TaskEnum.build_subcatchments,
    TaskEnum.abstract_watershed,
    TaskEnum.build_landuse,
    TaskEnum.build_soils,
    TaskEnum.build_climate,
    TaskEnum.run_wepp_hillslopes,
    TaskEnum.run_wepp_watershed,
]


def rss_kib() -> int:
    with open("/proc/self/status") as fp:
        for line in fp:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_many_runs_in_parallel_every_timestamp_present_memory_flat(
    tmp_path: Path, r0: redis.Redis[str]
) -> None:
    root = tmp_path / "runs"
    root.mkdir()
    threads_n = 4

    def body() -> dict[str, Any]:
        samples: list[tuple[int, int]] = []
        done = [0]
        lock = threading.Lock()
        errors: list[str] = []

        def thread(t: int) -> None:
            try:
                for n in range(t, RUNS, threads_n):
                    wd = root / f"run-{n:05d}"
                    wd.mkdir()
                    prep = RedisPrep.getInstance(str(wd))
                    for task in TASKS:
                        prep.timestamp(task)
                    with lock:
                        done[0] += 1
                        if done[0] % (RUNS // 8) == 0:
                            samples.append((done[0], rss_kib()))
            except Exception as e:
                errors.append(repr(e))

        t0 = time.monotonic()
        threads = [threading.Thread(target=thread, args=(t,)) for t in range(threads_n)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        return {"samples": samples, "errors": errors, "seconds": time.monotonic() - t0}

    status, out = Child(body).result(110)
    assert status == 0, out
    assert out["errors"] == []
    # every timestamp of every run is in Redis and in that run's dump
    pipe = r0.pipeline(transaction=False)
    for n in range(RUNS):
        pipe.hgetall(f"run-{n:05d}")
    hashes = pipe.execute()
    fields = {f"timestamps:{t}" for t in TASKS}
    missing = 0
    for n, h in enumerate(hashes):
        missing += len(fields - set(h))
        assert read_dump(root / f"run-{n:05d}") == h
    assert missing == 0
    samples = out["samples"]
    assert len(samples) >= 6
    # memory flat: after the first quarter (allocator and caches warm), RSS
    # grows by less than 8 MiB over the remaining three quarters of the runs
    warm = next(rss for runs, rss in samples if runs >= RUNS // 4)
    last = samples[-1][1]
    assert last - warm < 8 * 1024, samples
    print(
        f"\n{RUNS} runs x {len(TASKS)} timestamps in {out['seconds']:.1f} s, lost 0; "
        f"RSS KiB by runs done: {samples}"
    )
