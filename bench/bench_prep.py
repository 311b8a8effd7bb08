"""redisprep vs the pure-Python baseline vs the Rust floor, measured side by side in one run.

    make bench        # = script/setup && .venv/bin/python bench/bench_prep.py
    .venv/bin/python bench/bench_prep.py [--quick] [--cluster] [--json out.json]
    .venv/bin/python bench/bench_prep.py --section endpoint rqjob fork [--json out.json]

This file is the harness's entry point only: the sections live in bench/sec_*.py
(the names --section takes are listed by --help), shared measuring code in
bench/harness.py.

Starts its own private redis-server (never the shared 6379) and compares, with the
run folder on ext4 (a temp dir under /var/tmp) and on tmpfs (/dev/shm):

- legacy: the pure-Python reference of wepppy's RedisPrep on redis-py + hiredis
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
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness
import redis
import sec_endpoint
import sec_rq
import sec_syscalls
import sec_timestamp
from harness import CACHE_DB, FULL, QUICK, RESULTS, RULES, TARGETS, Env

import redisprep
from redisprep._server import RedisServer

# name -> (needs the Rust floor binaries, run). Printed titles and JSON keys are
# the same names the sections print.
SECTIONS: dict[str, tuple[bool, Callable[[Env], None]]] = {
    "ext4": (True, lambda env: sec_timestamp.section_fs(env, "ext4", Path("/var/tmp"))),
    "tmpfs": (True, lambda env: sec_timestamp.section_fs(env, "tmpfs", Path("/dev/shm"))),
    "keyspace": (False, sec_timestamp.section_unrelated),
    "scan": (False, sec_timestamp.check_no_scan),
    "protocol": (False, sec_timestamp.section_protocol),
    "syscalls": (True, lambda env: sec_syscalls.section_syscalls(env, env.rules)),
    "rules": (True, sec_timestamp.section_rules),
    "rss": (False, sec_syscalls.section_rss),
    "endpoint": (False, sec_endpoint.section_endpoint),
    "rqjob": (False, sec_rq.section_rqjob),
    "fork": (False, sec_rq.section_fork),
}
# cluster runs only when asked (--cluster or --section cluster): it starts 6 servers
OPTIONAL = ("cluster",)


def versions() -> str:
    import hiredis

    rs = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout
    m = re.search(r"v=(\S+)", rs)
    return (
        f"redisprep {redisprep.__version__}, redis-server {m.group(1) if m else '?'}, "
        f"redis-py {redis.__version__} (hiredis {hiredis.__version__}: "
        f"{'on' if redis.utils.HIREDIS_AVAILABLE else 'OFF'}), Python {sys.version.split()[0]}"
    )


def section_cluster(env: Env) -> None:
    procs, calls, runs = env.profile.cluster
    print(f"\n== cluster: timestamp() throughput from {procs} client processes")
    import bench_cluster

    single, clustered = bench_cluster.compare(procs, calls, runs)
    bench_cluster.report(single, clustered, procs)
    RESULTS["cluster"] = {"standalone": single, "cluster": clustered}


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny iteration counts (smoke test)")
    ap.add_argument("--cluster", action="store_true", help="also 1 node vs 3-master cluster")
    ap.add_argument("--no-rss", action="store_true", help="skip the long RSS run")
    ap.add_argument(
        "--section",
        nargs="+",
        choices=[*SECTIONS, *OPTIONAL],
        metavar="NAME",
        help=f"run only these sections: {', '.join([*SECTIONS, *OPTIONAL])}",
    )
    ap.add_argument("--json", help="also write every figure and every target to this file")
    args = ap.parse_args(argv)
    if args.section:
        chosen = [n for n in [*SECTIONS, *OPTIONAL] if n in args.section]
    else:
        chosen = [n for n in SECTIONS if not (n == "rss" and args.no_rss)]
        chosen += ["cluster"] if args.cluster else []
    profile = QUICK if args.quick else FULL
    # SIGTERM (and SIGINT, also when started in the background) stop the servers cleanly
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    t_start = time.perf_counter()
    load0 = os.getloadavg()
    print(f"redisprep benchmark ({'quick' if args.quick else 'full'}): {versions()}")
    print(f"{os.cpu_count()} CPUs, load average {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}")
    print(f"sections: {' '.join(chosen)}")
    print(
        f"{profile.iters} timed calls per variant in {profile.rounds} interleaved rounds; "
        "ratios = median over rounds of the per-round ratio of medians"
    )
    floor = harness.build_floor() if any(SECTIONS[n][0] for n in chosen if n in SECTIONS) else None
    server = RedisServer().start()
    rules_dir = Path(tempfile.mkdtemp(prefix="redisprep-bench-rules-"))
    status = 0
    try:
        rules = str(rules_dir / "bench_rules.json")
        Path(rules).write_text(json.dumps(RULES))
        redisprep.configure(server.url)
        redisprep.set_rules_path(rules)
        env = Env(server, server.client(0), server.client(CACHE_DB), profile, floor, rules)
        env.c0.config_resetstat()
        for name in chosen:
            if name == "cluster":
                try:  # a failure here must not lose the summary of everything above
                    section_cluster(env)
                except Exception as e:
                    print(f"   cluster section failed: {type(e).__name__}: {e}")
                    status = 1
                continue
            SECTIONS[name][1](env)
    finally:
        redisprep.set_rules_path(None)
        server.cleanup()
        shutil.rmtree(rules_dir, ignore_errors=True)
    print("\n== targets")
    for row in TARGETS.rows:
        print(f"   {row['verdict']}  {row['name']}: {TARGETS.text(row)}")
    load1 = os.getloadavg()
    took = time.perf_counter() - t_start
    met = sum(row["verdict"] == "PASS" for row in TARGETS.rows)
    print(
        f"\n{met}/{len(TARGETS.rows)} targets met; "
        f"took {took:.0f} s; load average now {load1[0]:.2f}"
    )
    if args.json:
        RESULTS["targets"] = TARGETS.rows
        RESULTS["run"] = {
            "sections": chosen,
            "quick": args.quick,
            "seconds": took,
            "load_average": [load0[0], load1[0]],
            "versions": versions(),
        }
        Path(args.json).write_text(json.dumps(RESULTS, indent=1))
    return status


if __name__ == "__main__":
    raise SystemExit(main())
