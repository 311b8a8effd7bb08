"""Sections: syscalls per timestamp() (strace) and RSS over many calls."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import redis
from harness import CACHE_DB, RESULTS, ROOT, TARGETS, Env, NaiveLegacyPrep, floor_cmd, seed_run

import redisprep
from redisprep import RedisPrep

CHILD_CODE = r"""
import sys
sys.path.insert(0, {bench!r})
import sec_syscalls
sec_syscalls.child({variant!r}, {url!r}, {wd!r}, {rules!r}, {n})
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
