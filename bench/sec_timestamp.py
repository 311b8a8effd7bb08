"""Sections: timestamp() and friends on ext4 and tmpfs, threads, keyspace size,
protocol facts, KEYS/SCAN, the Rust rules engine."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional

import redis
from harness import (
    CACHE_DB,
    CORE,
    EXTRA_SCANS,
    FLOOR,
    KEY_COUNTS,
    RESULTS,
    TARGETS,
    Env,
    NaiveLegacyPrep,
    Refill,
    Variant,
    floor_cmd,
    in_child,
    measure,
    print_table,
    ratio_line,
    rendered_keys,
    rr,
    seed_run,
)

import redisprep
from redisprep import RedisPrep
from redisprep._server import RedisServer
from support.legacy_ref import LegacyRedisPrep


def section_rules(env: Env) -> None:
    """The rules engine's hot-path lookups, measured in Rust (examples/rules_lookup.rs)."""
    print("\n== rules engine (Rust, packaged rules): lookup + render per task")
    if env.floor is None:
        print("   skipped (cargo not found)")
        return
    out = subprocess.run(
        [str(env.floor.parent / "rules_lookup")], check=True, capture_output=True, text=True
    ).stdout
    for line in out.splitlines():
        print(f"   {line}")


# ---------------------------------------------------------------- sections


def section_fs(env: Env, fs: str, base: Path) -> None:
    root = Path(tempfile.mkdtemp(prefix="redisprep-bench-", dir=base))
    try:
        _section_fs(env, fs, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _section_fs(env: Env, fs: str, root: Path) -> None:
    c0, c13 = env.c0, env.c13
    names = ("legacy", "naive", "redisprep", "core", "floor")
    runs = {name: root / f"run-{name}" for name in names}
    for wd in runs.values():
        seed_run(c0, wd)
    legacy = LegacyRedisPrep.getInstance(str(runs["legacy"]), c0)
    naive = NaiveLegacyPrep(str(runs["naive"]), c0, c13)
    prep = RedisPrep.getInstance(str(runs["redisprep"]))

    # timestamp() with 0 / 3 / 30 keys to invalidate
    for n in KEY_COUNTS:
        task = f"bench_{n}"
        keys = {name: rendered_keys(task, str(wd)) for name, wd in runs.items()}

        def refill_of(ks: list[str]) -> Optional[Callable[[], Any]]:
            return Refill(env.server.host, env.server.port, ks) if ks else None

        variants = [
            Variant("legacy (no invalidation)", lambda t=task: legacy.timestamp(t)),
            Variant(
                "legacy + naive invalidation",
                lambda t=task: naive.timestamp(t),
                refill_of(keys["naive"]),
            ),
            Variant("redisprep", lambda t=task: prep.timestamp(t), refill_of(keys["redisprep"])),
        ]
        fc = floor_cmd(env, runs["floor"], "timestamp", task, n)
        if fc is not None:
            core = floor_cmd(env, runs["core"], "core", task, n)
            variants.append(Variant(CORE, floor_args=[*(core or []), "--rules", env.rules]))
            variants.append(Variant(FLOOR, floor_args=fc))
        print_table(
            f"timestamp(), {n} keys to invalidate, run folder on {fs}", measure(env, variants)
        )
        # the work was really done: every refilled key was deleted
        if n and c13.exists(*keys["redisprep"], *keys["naive"]):
            raise SystemExit("cache keys survived the timestamp")
        ratio_line("legacy / redisprep", rr("legacy (no invalidation)", "redisprep"))
        target_naive = (
            ">=",
            2.5 if fs == "ext4" else 4.0,
            f"timestamp(3 keys) vs legacy+naive, {fs}",
        )
        ratio_line(
            "legacy + naive / redisprep",
            rr("legacy + naive invalidation", "redisprep"),
            target_naive if n == 3 else None,
        )
        if fc is not None:
            target_floor = ("<=", 1.15, f"timestamp(3 keys) vs floor, {fs}")
            ratio_line(
                "redisprep / floor", rr("redisprep", FLOOR), target_floor if n == 3 else None
            )
            ratio_line("redisprep core (no Python) / floor", rr(CORE, FLOOR))

    # prep[task]
    field_task = "bench_3"
    rid = runs["legacy"].name
    variants = [
        Variant("legacy prep[task]", lambda: legacy[field_task]),
        Variant("redis-py hget", lambda: c0.hget(rid, f"timestamps:{field_task}")),
        Variant("redisprep prep[task]", lambda: prep[field_task]),
    ]
    fc = floor_cmd(env, runs["floor"], "hget", field_task, 0)
    if fc is not None:
        variants.append(Variant("floor (Rust: 1 HGET round trip)", floor_args=fc))
    print_table(f"__getitem__, run folder on {fs}", measure(env, variants))
    ratio_line(
        "redis-py hget / redisprep",
        rr("redis-py hget", "redisprep prep[task]"),
        (">=", 1.5, f"__getitem__ vs redis-py hget, {fs}"),
    )
    ratio_line("legacy prep[task] / redisprep", rr("legacy prep[task]", "redisprep prep[task]"))

    # getInstance, warm process (the dump exists, attrs:loaded is true)
    host, port = env.server.host, env.server.port
    wl, wr = str(runs["legacy"]), str(runs["redisprep"])
    variants = [
        Variant("legacy getInstance (shared client)", lambda: LegacyRedisPrep.getInstance(wl, c0)),
        Variant(
            # wepppy's RedisPrep.__init__ builds a redis.Redis per instance
            "legacy getInstance (client per instance)",
            lambda: LegacyRedisPrep.getInstance(
                wl, redis.Redis(host=host, port=port, db=0, decode_responses=True)
            ),
        ),
        Variant("redisprep getInstance", lambda: RedisPrep.getInstance(wr)),
    ]
    print_table(f"getInstance (warm process), run folder on {fs}", measure(env, variants))
    ratio_line(
        "legacy (shared client) / redisprep",
        rr("legacy getInstance (shared client)", "redisprep getInstance"),
        (">=", 3.0, f"getInstance vs legacy (shared client), {fs}"),
    )
    ratio_line(
        "legacy (client per instance) / redisprep",
        rr("legacy getInstance (client per instance)", "redisprep getInstance"),
        (">=", 3.0, f"getInstance vs legacy construction (client per instance), {fs}"),
    )

    # timestamps_report()
    variants = [
        Variant("legacy timestamps_report()", legacy.timestamps_report),
        Variant("redisprep timestamps_report()", prep.timestamps_report),
    ]
    if legacy.timestamps_report().splitlines()[1:] != prep.timestamps_report().splitlines()[1:]:
        raise SystemExit("timestamps_report differs between legacy and redisprep")
    print_table(f"timestamps_report(), run folder on {fs}", measure(env, variants))
    ratio_line(
        "legacy / redisprep",
        rr("legacy timestamps_report()", "redisprep timestamps_report()"),
    )

    # set_rq_job_id()
    job = "0b5c8d1e-ffff-4f4e-9a57-1c2d3e4f5a6b"
    variants = [
        Variant("legacy set_rq_job_id()", lambda: legacy.set_rq_job_id("build_climate_rq", job)),
        Variant("redisprep set_rq_job_id()", lambda: prep.set_rq_job_id("build_climate_rq", job)),
    ]
    print_table(f"set_rq_job_id(), run folder on {fs}", measure(env, variants))
    ratio_line("legacy / redisprep", rr("legacy set_rq_job_id()", "redisprep set_rq_job_id()"))

    section_threads(env, fs, root)


def _throughput(threads: int, calls: int, make: Callable[[int], Callable[[], Any]]) -> float:
    """timestamp() calls/s: `threads` threads, each on its own run(s), `calls` in all."""
    per = calls // threads
    fns = [make(i) for i in range(threads)]
    barrier = threading.Barrier(threads + 1)

    def work(fn: Callable[[], Any]) -> None:
        barrier.wait()
        for _ in range(per):
            fn()

    ts = [threading.Thread(target=work, args=(fn,)) for fn in fns]
    for t in ts:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in ts:
        t.join()
    return per * threads / (time.perf_counter() - t0)


def section_threads(env: Env, fs: str, root: Path) -> None:
    """1 thread over 8 runs vs 8 threads on 8 runs (timestamp with 3 keys; keys not refilled)."""
    calls = env.profile.thread_calls
    dirs = []
    for i in range(8):
        wd = root / f"thread-run-{i}"
        seed_run(env.c0, wd)
        dirs.append(str(wd))
    preps = [RedisPrep.getInstance(d) for d in dirs]
    naives = [NaiveLegacyPrep(d, env.c0, env.c13) for d in dirs]

    def one_thread_rp(_: int) -> Callable[[], Any]:
        it = iter(range(10**12))
        return lambda: preps[next(it) % 8].timestamp("bench_3")

    def one_thread_naive(_: int) -> Callable[[], Any]:
        it = iter(range(10**12))
        return lambda: naives[next(it) % 8].timestamp("bench_3")

    rows: dict[str, float] = {}
    for _ in range(env.profile.rounds):  # interleaved; keep the best of each
        for name, threads, make in (
            ("redisprep, 1 thread (8 runs)", 1, one_thread_rp),
            (
                "redisprep, 8 threads (1 run each)",
                8,
                lambda i: lambda: preps[i].timestamp("bench_3"),
            ),
            ("legacy + naive, 1 thread (8 runs)", 1, one_thread_naive),
            (
                "legacy + naive, 8 threads (1 run each)",
                8,
                lambda i: lambda: naives[i].timestamp("bench_3"),
            ),
        ):
            got = in_child(lambda t=threads, m=make: _throughput(t, calls, m))
            rows[name] = max(rows.get(name, 0.0), got)
    print(f"\n== threads: timestamp() (3 keys) calls/s, run folders on {fs}")
    for name, v in rows.items():
        print(f"   {name:<44}{v:>11.0f}")
        RESULTS.setdefault(f"threads {fs}", {})[name] = v
    ratio_line(
        "redisprep 8 threads / 1 thread",
        rows["redisprep, 8 threads (1 run each)"] / rows["redisprep, 1 thread (8 runs)"],
        (">=", 1.5, f"8 threads vs 1 thread throughput, {fs}"),
    )
    ratio_line(
        "legacy + naive 8 threads / 1 thread",
        rows["legacy + naive, 8 threads (1 run each)"] / rows["legacy + naive, 1 thread (8 runs)"],
    )
    ratio_line(
        "redisprep / legacy + naive, 8 threads",
        rows["redisprep, 8 threads (1 run each)"] / rows["legacy + naive, 8 threads (1 run each)"],
    )


def section_unrelated(env: Env) -> None:
    """timestamp() with 10 / 10k / 1M unrelated keys in DB 0 and DB 13 (DEBUG POPULATE).

    One private server per keyspace size, measured interleaved in the same rounds,
    so a change of load on the machine cannot pass for an effect of the size.
    """
    root = Path(tempfile.mkdtemp(prefix="redisprep-bench-", dir="/dev/shm"))
    servers: list[RedisServer] = []
    try:
        wdn, wdr = root / "run-naive", root / "run-redisprep"
        kn, kr = rendered_keys("bench_3", str(wdn)), rendered_keys("bench_3", str(wdr))
        prep = RedisPrep.__new__(RedisPrep, str(wdr))
        variants = []
        for size in env.profile.sizes:
            srv = RedisServer().start()
            servers.append(srv)
            c0, c13 = srv.client(0), srv.client(CACHE_DB)
            for c in (c0, c13):
                c.execute_command("DEBUG", "POPULATE", size, "unrelated")
            seed_run(c0, wdn)
            seed_run(c0, wdr)
            naive = NaiveLegacyPrep(str(wdn), c0, c13)
            variants += [
                Variant(
                    f"legacy + naive, {size} unrelated keys per DB",
                    lambda n=naive: n.timestamp("bench_3"),
                    Refill(srv.host, srv.port, kn),
                ),
                Variant(
                    f"redisprep, {size} unrelated keys per DB",
                    lambda: prep.timestamp("bench_3"),
                    Refill(srv.host, srv.port, kr),
                    setup=lambda url=srv.url: redisprep.configure(url),
                ),
            ]
        time.sleep(1.0)  # let the servers finish rehashing their grown tables
        print_table(
            "timestamp() (3 keys) vs keyspace size (DB 0 and DB 13 each), tmpfs",
            measure(env, variants),
        )
        small, large = env.profile.sizes[0], env.profile.sizes[-1]
        for name in ("legacy + naive", "redisprep"):
            target = ("<=", 1.2, f"timestamp() flat from {small} to {large} unrelated keys")
            ratio_line(
                f"{name}: {large} / {small} unrelated keys",
                rr(
                    f"{name}, {large} unrelated keys per DB",
                    f"{name}, {small} unrelated keys per DB",
                ),
                target if name == "redisprep" else None,
            )
        for srv in servers:
            stats = srv.client(0).info("commandstats")
            for cmd in ("keys", "scan"):
                EXTRA_SCANS[cmd] += stats.get(f"cmdstat_{cmd}", {}).get("calls", 0)
    finally:
        for srv in servers:
            srv.cleanup()
        shutil.rmtree(root, ignore_errors=True)


def section_protocol(env: Env) -> None:
    """Round trips and commands per timestamp(): redisprep's counters and Redis's commandstats."""
    root = Path(tempfile.mkdtemp(prefix="redisprep-bench-", dir="/dev/shm"))
    try:
        wd = root / "run-proto"
        seed_run(env.c0, wd)
        prep = RedisPrep.getInstance(str(wd))
        n = 100
        env.c0.config_resetstat()
        before = redisprep.stats()["round_trips"]
        for _ in range(n):
            prep.timestamp("bench_3")
        rts = (redisprep.stats()["round_trips"] - before) / n
        stats = env.c0.info("commandstats")
        execs = stats.get("cmdstat_exec", {}).get("calls", 0) / n
        print("\n== protocol (100 timestamp() calls, 3 keys)")
        print(f"   round trips per timestamp(): {rts:g}; MULTI/EXEC per call: {execs:g}")
        per_call = {k[8:]: v["calls"] / n for k, v in sorted(stats.items())}
        print("   commands per call: " + ", ".join(f"{k} {v:g}" for k, v in per_call.items()))
        mark = TARGETS.check("round trips per timestamp()", rts, "<=", 1, "")
        print(f"   exactly one round trip: {mark}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def check_no_scan(env: Env) -> None:
    """KEYS and SCAN never ran on the server during the redisprep sections."""
    stats = env.c0.info("commandstats")
    keys = stats.get("cmdstat_keys", {}).get("calls", 0) + EXTRA_SCANS["keys"]
    scans = stats.get("cmdstat_scan", {}).get("calls", 0) + EXTRA_SCANS["scan"]
    print(f"\n== KEYS calls: {keys}, SCAN calls: {scans} during the whole benchmark")
    mark = TARGETS.check("KEYS + SCAN calls on hot paths", keys + scans, "<=", 0, "")
    print(f"   no KEYS/SCAN: {mark}")
