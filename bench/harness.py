"""The measuring harness shared by the sections of ``bench/bench_prep.py``:
profiles, results and targets (printed and written to ``--json``), interleaved
measurement in fresh processes, ratios, the untimed cache refill, seeded runs.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

ROOT = Path(__file__).resolve().parent.parent
for _p in (ROOT / "tests", ROOT / "bench"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from legacy_naive import CACHE_DB, KEY_COUNTS, RULES, NaiveLegacyPrep, rendered_keys  # noqa: E402

from redisprep import TaskEnum  # noqa: E402
from redisprep._server import RedisServer  # noqa: E402
from support.legacy_ref import LegacyRedisPrep  # noqa: E402

__all__ = ["CACHE_DB", "KEY_COUNTS", "RULES", "NaiveLegacyPrep", "rendered_keys"]

FLOOR_BIN = ROOT / "target" / "release" / "examples" / "floor"
FLOOR = "floor (Rust: 1 round trip + atomic write)"
CORE = "redisprep core from Rust (no Python)"


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
    http: tuple[int, float]  # endpoint: rounds, seconds of load per variant per round
    rq: tuple[int, int]  # RQ sections: rounds, jobs per worker run


FULL = Profile(
    2000, 10, 100, (10, 10_000, 1_000_000), 4000, 1_000_000, (100, 300), (4, 2000, 64),
    (4, 2.0), (5, 40),
)  # fmt: skip
QUICK = Profile(
    12, 2, 3, (10, 100, 1000), 48, 300, (5, 15), (4, 20, 4), (1, 0.3), (1, 3)
)  # fmt: skip

# ---------------------------------------------------------------- results


@dataclass
class Targets:
    """Every target checked in this run: name (as printed), measured value, bound, verdict."""

    rows: list[dict[str, Any]] = field(default_factory=list)

    def check(self, name: str, value: float, op: str, bound: float, unit: str = "x") -> str:
        ok = value <= bound if op == "<=" else value >= bound
        mark = "PASS" if ok else "MISS"
        self.rows.append(
            {
                "name": name,
                "value": float(value),
                "op": op,
                "bound": float(bound),
                "unit": unit,
                "verdict": mark,
            }
        )
        return mark

    @staticmethod
    def text(row: dict[str, Any]) -> str:
        unit = row["unit"]
        return f"{row['value']:.2f}{unit} (target {row['op']} {row['bound']:g}{unit})"


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
