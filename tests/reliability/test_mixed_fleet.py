"""A mixed fleet during the gradual migration: legacy-shaped writers (the
pure-Python reference in tests/support, which writes the dump in place with
``open(path, 'w')`` + ``json.dump``, takes no lock and makes two round trips)
and redisprep writers, in real processes, hammering the same runs.

redisprep never crashes and never loads a torn file: a lazy load or a recovery
that finds an empty or truncated dump retries briefly (bounded), then loads the
complete file or raises ``DumpFormatError`` naming it, with nothing half-loaded.
Legacy's own races can leave a stale dump behind; one redisprep write then
makes dump == hash, byte-identical to legacy's ``json.dump`` of that hash.
Run with ``-s`` for the cost of mixing."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable

import redis

import redisprep
from redisprep import RedisPrep
from support.legacy_ref import LegacyRedisPrep
from support.redis_server import url_with_db

from .conftest import Child, read_dump, temp_files
from .test_concurrency import reader

RUNS = ("mix-a", "mix-b")
THREADS = 4
CALLS = max(50, int(os.environ.get("REDISPREP_RELIABILITY_CALLS", "500")) // 2)


def fleet_writer(kind: str, p: int, root: Path, go: Path, url: str) -> Callable[[], dict[str, Any]]:
    """One process of ``THREADS`` threads; thread ``t`` writes run ``RUNS[t % 2]``:
    ``timestamp(c<p>_<t>_<i>)`` then ``remove_timestamp(c<p>_<t>_<i-1>)``.

    Right after each ``timestamp()`` returns, the thread reads the dump: an
    update missing from it then was lost by the file (a writer with an older
    ``HGETALL`` wrote after it); only this thread ever removes its fields."""

    def body() -> dict[str, Any]:
        errors: list[str] = []
        counts = {"lost": 0, "torn": 0}

        def thread(t: int) -> None:
            wd = str(root / RUNS[t % len(RUNS)])
            prep: Any
            if kind == "legacy":
                prep = LegacyRedisPrep(wd, redis.Redis.from_url(url, decode_responses=True))
            else:
                prep = RedisPrep.__new__(RedisPrep, wd)
            dump = os.path.join(wd, "redisprep.dump")
            try:
                for i in range(CALLS):
                    prep.timestamp(f"c{p}_{t}_{i}")
                    try:
                        with open(dump, encoding="utf-8") as fp:
                            seen = json.load(fp)
                        counts["lost"] += f"timestamps:c{p}_{t}_{i}" not in seen
                    except ValueError:
                        counts["torn"] += 1
                    if i:
                        prep.remove_timestamp(f"c{p}_{t}_{i - 1}")
            except Exception as e:
                errors.append(f"{type(e).__name__}: {e}")

        while not go.exists():
            time.sleep(0.001)
        threads = [threading.Thread(target=thread, args=(t,)) for t in range(THREADS)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        return {"errors": errors, **counts}

    return body


def hammer(root: Path, url: str, kinds: list[str]) -> dict[str, Any]:
    """Run one writer process per entry of ``kinds`` and a reader per run; return
    the readers' counts and, per writer kind, how many of its threads' last
    acknowledged timestamp the final dump lacks (a lost update)."""
    go, stop = root / "go", root / "stop"
    for name in RUNS:
        (root / name).mkdir(parents=True, exist_ok=True)
        RedisPrep.getInstance(str(root / name))
    procs = [Child(fleet_writer(kind, p, root, go, url)) for p, kind in enumerate(kinds)]
    readers = [Child(reader(root / name / "redisprep.dump", stop)) for name in RUNS]
    go.touch()
    results = [proc.result(170) for proc in procs]
    stop.touch()
    seen = [r.result(30) for r in readers]
    go.unlink()
    stop.unlink()
    for status, out in results:
        assert status == 0, out
    ours_errors = [e for (_, out), k in zip(results, kinds) if k == "ours" for e in out["errors"]]
    assert ours_errors == [], ours_errors[:3]
    totals: dict[str, Any] = {"invalid": 0, "regressions": 0, "reads": 0}
    for key in ("lost", "torn"):
        totals[f"{key}_right_after"] = {
            kind: sum(out[key] for (_, out), k in zip(results, kinds) if k == kind)
            for kind in sorted(set(kinds))
        }
    for status, out in seen:
        assert status == 0, out
        for k in ("invalid", "regressions", "reads"):
            totals[k] += out[k]
    lost = {kind: 0 for kind in kinds}
    for p, kind in enumerate(kinds):
        for t in range(THREADS):
            try:
                dumped = read_dump(root / RUNS[t % len(RUNS)])
            except ValueError:  # a legacy writer left a torn file
                dumped = {}
            lost[kind] += f"timestamps:c{p}_{t}_{CALLS - 1}" not in dumped
    totals["lost_at_end"] = lost
    totals["timestamps"] = {k: kinds.count(k) * THREADS * CALLS for k in sorted(set(kinds))}
    return totals


def repair_and_compare(root: Path, r0: redis.Redis[str]) -> None:
    """One redisprep write per run: dump == hash, byte-identical to legacy's json.dump."""
    for name in RUNS:
        RedisPrep.__new__(RedisPrep, str(root / name)).timestamp("after_the_fleet")
        h = {k: v for k, v in r0.hgetall(name).items() if not k.startswith("locked:")}
        assert (root / name / "redisprep.dump").read_text() == json.dumps(h)
        assert temp_files(root / name) == []


def test_mixed_fleet_never_crashes_and_one_write_repairs_the_dump(
    tmp_path: Path, redis_info: Any, r0: redis.Redis[str]
) -> None:
    figures = {}
    for label, kinds in [
        ("redisprep only", ["ours", "ours"]),
        ("legacy only", ["legacy", "legacy"]),
        ("mixed", ["legacy", "ours"]),
    ]:
        root = tmp_path / label.replace(" ", "-")
        figures[label] = hammer(root, redis_info.url, kinds)
        repair_and_compare(root, r0)
    print(f"\n  {THREADS} threads x {CALLS} timestamp()+remove_timestamp() per process, 2 runs:")
    for label, f in figures.items():
        print(f"  {label}: {f}")
    ours = figures["redisprep only"]
    assert ours["invalid"] == 0 and ours["regressions"] == 0, ours
    assert ours["lost_right_after"] == {"ours": 0} and ours["torn_right_after"] == {"ours": 0}
    assert ours["lost_at_end"] == {"ours": 0}, ours


def torn_writer(wd: str, url: str, stop: Path, fields: dict[str, str]) -> Callable[[], Any]:
    """A legacy process rewriting the run's dump in place, as fast as it can,
    from its own copy of the hash (DB 1), so the file is often empty or cut."""

    def body() -> dict[str, int]:
        client = redis.Redis.from_url(url_with_db(url, 1), decode_responses=True)
        client.hset(os.path.basename(wd), mapping=fields)
        legacy = LegacyRedisPrep(wd, client)
        n = 0
        while not stop.exists():
            legacy.dump()
            n += 1
        return {"writes": n}

    return body


def test_torn_legacy_dump_is_retried_then_loaded_whole(
    run_dir: Path, redis_info: Any, r0: redis.Redis[str]
) -> None:
    """Lazy load and recovery against a dump a legacy writer keeps rewriting in place."""
    wd, key = str(run_dir), run_dir.name
    fields = {f"timestamps:t{i}": str(1_700_000_000 + i) for i in range(3000)}
    fields["attrs:loaded"] = "true"
    (run_dir / "redisprep.dump").write_text(json.dumps(fields))
    stop = run_dir.parent / "stop-torn"
    writer = Child(torn_writer(wd, redis_info.url, stop, fields))
    before = redisprep.stats()["torn_dump_retries"]
    loaded = refused = recovered = 0
    try:
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            r0.delete(key)  # Redis lost the run: the next call loads or recovers
            try:
                if loaded % 2:
                    RedisPrep.__new__(RedisPrep, wd)["extra"] = 1  # recovery under the write
                    recovered += 1
                else:
                    RedisPrep.getInstance(wd)  # lazy load
                loaded += 1
            except redisprep.DumpFormatError as e:
                refused += 1
                assert "redisprep.dump" in str(e)
                got = r0.hgetall(key)
                assert not any(k in got for k in fields if k != "attrs:loaded"), "half-loaded"
                continue
            got = r0.hgetall(key)
            assert {k: got.get(k) for k in fields} == fields  # the whole file, never a part
    finally:
        stop.touch()
    status, out = writer.result(30)
    assert status == 0, out
    retries = redisprep.stats()["torn_dump_retries"] - before
    print(
        f"\n  torn legacy dump: {out['writes']} legacy rewrites; {loaded} loads "
        f"({recovered} recoveries) whole, {refused} refused after retrying, "
        f"{retries} retries of an empty or cut file"
    )
    assert loaded > 0
    assert retries > 0, "the legacy writer never tore a file the loader read"
