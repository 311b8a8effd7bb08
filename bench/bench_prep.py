"""redisprep vs the pure-Python baseline vs the Rust floor, measured side by side in one run.

    make bench        # = script/setup && .venv/bin/python bench/bench_prep.py
    .venv/bin/python bench/bench_prep.py [--quick] [--cluster] [--json out.json]

Starts its own private redis-server (never the shared 6379) and compares, with the
run folder on ext4 (a temp dir under /var/tmp) and on tmpfs (/dev/shm):

- legacy: the pure-Python RedisPrep of SPEC on redis-py + hiredis
  (tests/support/legacy_ref.py: HSET, then HGETALL + json.dump to the file);
- legacy + naive invalidation: the same, plus one DEL per rendered cache key on
  DB 13 through a second redis-py client;
- redisprep;
- floor: one round trip of the same MULTI/EXEC transaction on a plain `redis`
  crate connection + one atomic write (temp + rename) of the same bytes, in Rust
  (examples/floor.rs, built here with `cargo build --release --example floor`).

Cache keys to invalidate are re-created (untimed) before every timed call. Variants
are interleaved in rounds, so load on the (shared) machine hits all of them alike.
Prints median and p99 per operation, the ratios and PASS/MISS against the targets
of the performance issue. A miss is reported, never an error: the exit status is 0
unless something is broken (a wrong result, a crash).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

import redis  # noqa: E402

import redisprep  # noqa: E402
from redisprep import RedisPrep, TaskEnum  # noqa: E402
from redisprep._server import RedisServer  # noqa: E402
from support.legacy_ref import LegacyRedisPrep  # noqa: E402

FLOOR_BIN = ROOT / "target" / "release" / "examples" / "floor"
KEY_COUNTS = (0, 3, 30)
FLOOR = "floor (Rust: 1 round trip + atomic write)"
CORE = "redisprep core from Rust (no Python)"
CACHE_DB = 13


@dataclass
class Profile:
    iters: int  # timed calls per variant per operation
    rounds: int  # interleaving rounds (iters are split over them)
    warmup: int
    sizes: tuple[int, ...]  # unrelated keys in DB 0 and DB 13
    thread_calls: int
    rss_calls: int
    strace_calls: tuple[int, int]
    cluster: tuple[int, int, int]  # procs, calls per process, runs per process


FULL = Profile(2000, 10, 100, (10, 10_000, 1_000_000), 4000, 1_000_000, (100, 300), (4, 2000, 64))
QUICK = Profile(12, 2, 3, (10, 100, 1000), 48, 300, (5, 15), (4, 20, 4))

# ---------------------------------------------------------------- results


@dataclass
class Targets:
    rows: list[tuple[str, str, str]] = field(default_factory=list)

    def check(self, name: str, value: float, op: str, bound: float, unit: str = "x") -> str:
        ok = value <= bound if op == "<=" else value >= bound
        mark = "PASS" if ok else "MISS"
        self.rows.append((name, f"{value:.2f}{unit} (target {op} {bound:g}{unit})", mark))
        return mark


RESULTS: dict[str, Any] = {}
LAST_ROUNDS: dict[str, list[float]] = {}  # per-round medians of the last measure()
EXTRA_SCANS: Counter[str] = Counter()  # KEYS/SCAN seen by servers stopped before the check
TARGETS = Targets()


def med_p99(samples_ns: list[int]) -> tuple[float, float]:
    s = sorted(samples_ns)
    med = s[len(s) // 2] if len(s) % 2 else (s[len(s) // 2 - 1] + s[len(s) // 2]) / 2
    p99 = s[max(0, math.ceil(0.99 * len(s)) - 1)]
    return med / 1000.0, p99 / 1000.0


def print_table(title: str, rows: dict[str, list[int]]) -> dict[str, float]:
    print(f"\n== {title}")
    print(f"   {'variant':<44}{'median us':>11}{'p99 us':>11}{'n':>7}")
    medians: dict[str, float] = {}
    for name, samples in rows.items():
        med, p99 = med_p99(samples)
        medians[name] = med
        print(f"   {name:<44}{med:>11.1f}{p99:>11.1f}{len(samples):>7}")
        RESULTS.setdefault(title, {})[name] = {"median_us": med, "p99_us": p99, "n": len(samples)}
    return medians


def ratio_line(text: str, value: float, target: Optional[tuple[str, float, str]] = None) -> None:
    if target is None:
        print(f"   {text}: {value:.2f}x")
        return
    op, bound, name = target
    mark = TARGETS.check(name, value, op, bound)
    print(f"   {text}: {value:.2f}x (target {op} {bound:g}x) {mark}")


# ---------------------------------------------------------------- set-up


def rules_doc() -> dict[str, Any]:
    """30 controllers c0..c29 ({wd}/c<i>.nodb); tasks bench_0/3/30 invalidate 0/3/30 of them."""
    return {
        "version": 1,
        "db": CACHE_DB,
        "controllers": {f"c{i}": {"keys": [f"{{wd}}/c{i}.nodb"]} for i in range(30)},
        "tasks": {f"bench_{n}": {"invalidates": [f"c{i}" for i in range(n)]} for n in KEY_COUNTS},
    }


RULES = rules_doc()


def rendered_keys(task: str, wd: str) -> list[str]:
    """What a straightforward Python port renders for `task` (the same keys redisprep deletes)."""
    abs_wd = os.path.abspath(wd)
    run_id = os.path.basename(abs_wd)
    out = []
    for c in RULES["tasks"][task]["invalidates"]:
        for t in RULES["controllers"][c]["keys"]:
            out.append(t.replace("{wd}", abs_wd).replace("{run_id}", run_id))
    return out


def resp(*args: Any) -> bytes:
    """One command in the Redis protocol."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class Refill:
    """Re-create cache keys (MSET on DB 13) before a timed call, untimed.

    A raw socket and a pre-encoded command, not redis-py: running redis-py's
    client code between two timed calls evicts enough CPU cache to add 10-20 us
    to the next call (measured), which would bias the Python variants.
    """

    def __init__(self, host: str, port: int, keys: list[str]) -> None:
        self.addr = (host, port)
        self.payload = resp("MSET", *[x for k in keys for x in (k, "cached")])
        self.sock: Optional[socket.socket] = None
        self.pid = 0

    def __call__(self) -> None:
        if self.pid != os.getpid():  # a fresh connection in each measuring child
            self.sock = socket.create_connection(self.addr)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock.sendall(resp("SELECT", CACHE_DB))
            if self.sock.recv(64) != b"+OK\r\n":
                raise SystemExit("refill: SELECT failed")
            self.pid = os.getpid()
        assert self.sock is not None
        self.sock.sendall(self.payload)
        if self.sock.recv(64) != b"+OK\r\n":
            raise SystemExit("refill: MSET failed")


class NaiveLegacyPrep(LegacyRedisPrep):
    """legacy + naive invalidation: timestamp, then one DEL per rendered key on DB 13."""

    def __init__(self, wd: str, client: Any, cache: Any) -> None:
        super().__init__(wd, client)
        self.cache = cache

    def timestamp(self, key: Any, now: Optional[int] = None) -> None:
        super().timestamp(key, now)
        for k in rendered_keys(str(key), self.wd):
            self.cache.delete(k)


def seed_run(client: Any, wd: Path) -> None:
    """A realistic run: a timestamp for every task, flags and job ids (~2 KB dump)."""
    wd.mkdir(parents=True, exist_ok=True)
    now = int(time.time())
    fields = {"attrs:loaded": "true", "attrs:has_sbs": "false", "attrs:sbs_required": "false"}
    for i, task in enumerate(TaskEnum):
        fields[f"timestamps:{task}"] = str(now - 1000 + i)
    for i in range(4):
        fields[f"rq:job{i}"] = f"0b5c8d1e-{i:04d}-4f4e-9a57-1c2d3e4f5a6b"
    client.delete(wd.name)
    client.hset(wd.name, mapping=fields)
    legacy = LegacyRedisPrep(str(wd), client)
    legacy.dump()


@dataclass
class Env:
    server: RedisServer
    c0: Any  # redis-py on DB 0 (decode_responses)
    c13: Any  # a second redis-py client, DB 13
    profile: Profile
    floor: Optional[Path]
    rules: str


class Variant:
    """One side of a comparison: `call()` timed, `refill()` untimed before each call."""

    def __init__(
        self,
        name: str,
        call: Optional[Callable[[], Any]] = None,
        refill: Optional[Callable[[], Any]] = None,
        floor_args: Optional[list[str]] = None,
        setup: Optional[Callable[[], Any]] = None,
    ) -> None:
        self.name = name
        self.setup = setup
        self.call = call
        self.refill = refill
        self.floor_args = floor_args
        self.samples: list[int] = []

    def run(self, n: int, warmup: int) -> None:
        if self.floor_args is not None:
            out = subprocess.run(
                [*self.floor_args, "--iters", str(n), "--warmup", str(warmup)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            self.samples.extend(int(x) for x in json.loads(out)["samples_ns"])
            return
        call, refill, setup = self.call, self.refill, self.setup
        assert call is not None

        def loop() -> list[int]:
            if setup is not None:
                setup()
            clock, out = time.perf_counter_ns, []
            for i in range(warmup + n):
                if refill is not None:
                    refill()
                t0 = clock()
                call()
                t1 = clock()
                if i >= warmup:
                    out.append(t1 - t0)
            return out

        self.samples.extend(in_child(loop))


def in_child(fn: Callable[[], Any]) -> Any:
    """Run `fn` in a forked child and return its (JSON) result.

    Every measured chunk runs in a fresh process, like the floor binary does: on a
    loaded machine the scheduler wakes a long-running, CPU-heavy process (this
    script) later after each blocking read than a fresh one, which would bias
    every in-process variant against the floor. Connections are not shared with
    the parent: redis-py and redisprep both reconnect after a fork.
    """
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            os.close(r)
            data = json.dumps(fn()).encode()
            with os.fdopen(w, "wb") as f:
                f.write(data)
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 1
        os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise SystemExit(f"a measuring child failed (status {status})")
    return json.loads(data)


def measure(env: Env, variants: list[Variant]) -> dict[str, list[int]]:
    """Interleaved rounds: each round runs one chunk of every variant in turn."""
    p = env.profile
    chunk = max(1, p.iters // p.rounds)
    LAST_ROUNDS.clear()
    for r in range(p.rounds):
        for v in variants:
            start = len(v.samples)
            v.run(chunk, p.warmup if r == 0 else max(1, p.warmup // 10))
            LAST_ROUNDS.setdefault(v.name, []).append(statistics.median(v.samples[start:]))
    return {v.name: v.samples for v in variants}


def rr(a: str, b: str) -> float:
    """Ratio a / b of the last measurement: the median over rounds of the ratio of
    the two variants' medians in that round (chunks of one round ran back to back,
    so load that changes between rounds cancels out)."""
    return float(statistics.median(x / y for x, y in zip(LAST_ROUNDS[a], LAST_ROUNDS[b])))


def floor_cmd(env: Env, wd: Path, op: str, task: str, keys: int) -> Optional[list[str]]:
    if env.floor is None:
        return None
    return [
        str(env.floor),
        "--url",
        env.server.url,
        "--dir",
        str(wd),
        "--op",
        op,
        "--task",
        task,
        "--keys",
        str(keys),
    ]


def build_floor() -> Optional[Path]:
    cargo = shutil.which("cargo")
    if cargo is None:
        print("warning: cargo not found; the floor rows are skipped", file=sys.stderr)
        return None
    subprocess.run(
        [cargo, "build", "--release", "-q", "--example", "floor", "--example", "rules_lookup"],
        cwd=ROOT,
        check=True,
    )
    return FLOOR_BIN


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
        prep = RedisPrep(str(wdr), _init=False)
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


# ------------------------------------------------------------- syscalls


CHILD_CODE = r"""
import sys
sys.path.insert(0, {bench!r})
import bench_prep
bench_prep.child({variant!r}, {url!r}, {wd!r}, {rules!r}, {n})
"""


def child(variant: str, url: str, wd: str, rules: str, n: int) -> None:
    """strace helper: `n` timestamp() calls (3 keys) of one variant in a fresh process."""
    redisprep.configure(url)
    redisprep.set_rules_path(rules)
    c0 = redis.Redis.from_url(url, decode_responses=True)
    c13 = redis.Redis.from_url(url, db=CACHE_DB, decode_responses=True)
    if variant == "redisprep":
        p: Any = RedisPrep.getInstance(wd)
    else:
        p = NaiveLegacyPrep(wd, c0, c13)
    for _ in range(20):
        p.timestamp("bench_3")
    for _ in range(n):
        p.timestamp("bench_3")


LINE = re.compile(r"^(?:\[pid\s+\d+\]\s+|\d+\s+)?([a-z_0-9]+)\(")


def strace_counts(cmd: list[str], out: Path) -> Counter[str]:
    subprocess.run(["strace", "-f", "-qq", "-o", str(out), *cmd], check=True, capture_output=True)
    counts: Counter[str] = Counter()
    for line in out.read_text(errors="replace").splitlines():
        if "resumed>" in line:
            continue
        m = LINE.match(line)
        if m:
            counts[m.group(1)] += 1
    return counts


def section_syscalls(env: Env, rules: str) -> None:
    """Syscalls per timestamp() (3 keys, ext4): strace of n2 calls minus n1 calls, / (n2 - n1)."""
    if shutil.which("strace") is None:
        print("\n== syscalls per timestamp(): strace not installed, skipped")
        return
    n1, n2 = env.profile.strace_calls
    root = Path(tempfile.mkdtemp(prefix="redisprep-bench-", dir="/var/tmp"))
    try:
        per: dict[str, dict[str, float]] = {}
        for variant in ("legacy + naive", "redisprep", "floor"):
            wd = root / f"run-{variant.split()[0]}"
            seed_run(env.c0, wd)
            counts = []
            for n in (n1, n2):
                if variant == "floor":
                    if env.floor is None:
                        break
                    cmd = [
                        *(floor_cmd(env, wd, "timestamp", "bench_3", 3) or []),
                        "--iters",
                        str(n),
                    ]
                    cmd += ["--warmup", "0"]
                else:
                    code = CHILD_CODE.format(
                        bench=str(ROOT / "bench"),
                        variant=variant.split()[0],
                        url=env.server.url,
                        wd=str(wd),
                        rules=rules,
                        n=n,
                    )
                    cmd = [sys.executable, "-c", code]
                counts.append(strace_counts(cmd, root / "strace.out"))
            if len(counts) == 2:
                diff = {k: (counts[1][k] - counts[0][k]) / (n2 - n1) for k in counts[1]}
                per[variant] = {k: v for k, v in diff.items() if v >= 0.5}
        print("\n== syscalls per timestamp() (3 keys, ext4; strace, difference of two run lengths)")
        names = sorted({k for d in per.values() for k in d})
        print(f"   {'syscall':<20}" + "".join(f"{v:>18}" for v in per))
        for k in names:
            print(f"   {k:<20}" + "".join(f"{per[v].get(k, 0):>18.1f}" for v in per))
        print(f"   {'total':<20}" + "".join(f"{sum(d.values()):>18.1f}" for d in per.values()))
        print("   (the floor also re-creates 3 cache keys per call: 1 sendto + 1 recvfrom)")
        RESULTS["syscalls per timestamp()"] = per
    finally:
        shutil.rmtree(root, ignore_errors=True)


# ---------------------------------------------------------------- RSS


def rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def section_rss(env: Env) -> None:
    calls = env.profile.rss_calls
    root = Path(tempfile.mkdtemp(prefix="redisprep-bench-", dir="/dev/shm"))
    try:
        wd = root / "run-rss"
        seed_run(env.c0, wd)
        prep = RedisPrep.getInstance(str(wd))
        warm = max(1, calls // 10)
        for _ in range(warm):
            prep.timestamp("bench_3")
        start = rss_kb()
        peak = start
        t0 = time.perf_counter()
        step = max(1, calls // 10)
        for i in range(calls):
            prep.timestamp("bench_3")
            if i % step == 0:
                peak = max(peak, rss_kb())
        took = time.perf_counter() - t0
        end = rss_kb()
        peak = max(peak, end)
        change = (end - start) / start * 100
        print(
            f"\n== RSS over {calls} timestamp() calls (3 keys, tmpfs; after {warm} warm-up calls)"
        )
        print(
            f"   start {start} kB, end {end} kB, peak {peak} kB, "
            f"change {change:+.2f}% ({took:.0f} s)"
        )
        mark = TARGETS.check(
            f"RSS change over {calls} timestamp() calls", abs(change), "<=", 5, "%"
        )
        print(f"   flat within 5%: {mark}")
        RESULTS["rss"] = {"calls": calls, "start_kb": start, "end_kb": end, "peak_kb": peak}
    finally:
        shutil.rmtree(root, ignore_errors=True)


# ---------------------------------------------------------------- main


def versions() -> str:
    import hiredis

    rs = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout
    m = re.search(r"v=(\S+)", rs)
    return (
        f"redisprep {redisprep.__version__}, redis-server {m.group(1) if m else '?'}, "
        f"redis-py {redis.__version__} (hiredis {hiredis.__version__}: "
        f"{'on' if redis.utils.HIREDIS_AVAILABLE else 'OFF'}), Python {sys.version.split()[0]}"
    )


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny iteration counts (smoke test)")
    ap.add_argument("--cluster", action="store_true", help="also 1 node vs 3-master cluster")
    ap.add_argument("--no-rss", action="store_true", help="skip the long RSS run")
    ap.add_argument("--json", help="also write the numbers to this file")
    args = ap.parse_args(argv)
    profile = QUICK if args.quick else FULL
    # SIGTERM (and SIGINT, also when started in the background) stop the servers cleanly
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    t_start = time.perf_counter()
    load0 = os.getloadavg()
    print(f"redisprep benchmark ({'quick' if args.quick else 'full'}): {versions()}")
    print(f"{os.cpu_count()} CPUs, load average {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}")
    print(
        f"{profile.iters} timed calls per variant in {profile.rounds} interleaved rounds; "
        "ratios = median over rounds of the per-round ratio of medians"
    )
    floor = build_floor()
    server = RedisServer().start()
    rules_dir = Path(tempfile.mkdtemp(prefix="redisprep-bench-rules-"))
    try:
        rules = str(rules_dir / "bench_rules.json")
        Path(rules).write_text(json.dumps(RULES))
        redisprep.configure(server.url)
        redisprep.set_rules_path(rules)
        env = Env(server, server.client(0), server.client(CACHE_DB), profile, floor, rules)
        env.c0.config_resetstat()
        for fs, base in (("ext4", "/var/tmp"), ("tmpfs", "/dev/shm")):
            section_fs(env, fs, Path(base))
        section_unrelated(env)
        check_no_scan(env)
        section_protocol(env)
        section_syscalls(env, rules)
        section_rules(env)
        if not args.no_rss:
            section_rss(env)
    finally:
        redisprep.set_rules_path(None)
        server.cleanup()
        shutil.rmtree(rules_dir, ignore_errors=True)
    status = 0
    if args.cluster:
        procs, calls, runs = profile.cluster
        print(f"\n== cluster: timestamp() throughput from {procs} client processes")
        try:  # a failure here must not lose the summary of everything above
            import bench_cluster

            single, clustered = bench_cluster.compare(procs, calls, runs)
            bench_cluster.report(single, clustered, procs)
            RESULTS["cluster"] = {"standalone": single, "cluster": clustered}
        except Exception as e:
            print(f"   cluster section failed: {type(e).__name__}: {e}")
            status = 1
    print("\n== targets")
    for name, value, mark in TARGETS.rows:
        print(f"   {mark}  {name}: {value}")
    load1 = os.getloadavg()
    print(
        f"\n{sum(m == 'PASS' for *_, m in TARGETS.rows)}/{len(TARGETS.rows)} targets met; "
        f"took {time.perf_counter() - t_start:.0f} s; load average now {load1[0]:.2f}"
    )
    if args.json:
        RESULTS["targets"] = TARGETS.rows
        Path(args.json).write_text(json.dumps(RESULTS, indent=1))
    return status


if __name__ == "__main__":
    raise SystemExit(main())
