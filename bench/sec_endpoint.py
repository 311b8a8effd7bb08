"""Section ``endpoint``: a request to a wepppy-shaped RQ endpoint, end to end.

The demo app's ``build_climate`` endpoint (redisprep: ``getInstance``, enqueue,
``set_rq_job_id``) against the same endpoint written the legacy way (+
``remove_timestamp``; ``bench/endpoint_app.py``), each served by its own gunicorn
(gthread workers) on the same private Redis with a real RQ enqueue, driven over
HTTP by ``bench/http_load.py`` (keep-alive clients in one separate process) at 1,
8 and 32 concurrent clients, in two deployments: 1 worker x 8 threads, and
wepppy's 4 workers x 2 threads. The two variants run interleaved (A B A B) in
rounds; a ratio is the median over rounds of the per-round ratio of requests/s.
Every response must be a successful enqueue and every job must be in its queue,
else the result is broken.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from harness import RESULTS, ROOT, TARGETS, Env, med_p99

from redisprep._demo.app import RQ_DB
from redisprep._demo.runs import create_sample_run
from redisprep._server import free_port, stop_process

CLIENTS = (1, 8, 32)
DEPLOYMENTS = (("1 worker x 8 threads", 1, 8), ("4 workers x 2 threads (wepppy)", 4, 2))
VARIANTS = ("legacy", "redisprep")
CONFIG = "dev_unit"


def _start(kind: str, workers: int, threads: int, env_vars: dict[str, str]) -> tuple[Any, int]:
    port = free_port()
    cmd = [
        sys.executable, "-m", "gunicorn",
        "--pythonpath", f"{ROOT / 'bench'},{ROOT / 'tests'}",
        "-b", f"127.0.0.1:{port}", "-w", str(workers), "--threads", str(threads),
        "-k", "gthread", "--log-level", "warning", "--backlog", "256",
        f'endpoint_app:create("{kind}")',
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, env={**os.environ, **env_vars}, cwd=ROOT)
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
        except urllib.error.HTTPError:
            return proc, port  # 404: the app answers
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"gunicorn ({kind}) did not start") from None
            time.sleep(0.1)


def _load(kind: str, port: int, clients: int, seconds: float) -> dict[str, Any]:
    path = f"/runs/bench-endpoint-{kind}/{CONFIG}/rq/api/build_climate"
    warmup = min(0.5, seconds / 4)
    cmd = [sys.executable, str(ROOT / "bench" / "http_load.py"), "127.0.0.1", str(port), path]
    out = subprocess.run(
        [*cmd, str(clients), str(seconds), str(warmup)],
        capture_output=True, text=True, check=True, timeout=600,
    )  # fmt: skip
    res: dict[str, Any] = json.loads(out.stdout)
    if res["bad_count"] or not res["requests"]:
        raise SystemExit(f"endpoint: {res['bad_count']} failed requests: {res['bad']}")
    return res


def section_endpoint(env: Env) -> None:
    import redis

    rounds, seconds = env.profile.http
    root = Path(tempfile.mkdtemp(prefix="redisprep-bench-http-", dir="/var/tmp"))
    rq = redis.Redis(host=env.server.host, port=env.server.port, db=RQ_DB)
    try:
        for name, workers, threads in DEPLOYMENTS:
            procs: dict[str, tuple[Any, int]] = {}
            queues = {}
            try:
                for kind in VARIANTS:
                    runs_root = root / kind
                    create_sample_run(str(runs_root), f"bench-endpoint-{kind}", CONFIG)
                    queues[kind] = f"bench-http-{kind}"
                    procs[kind] = _start(
                        kind,
                        workers,
                        threads,
                        {
                            "BENCH_RUNS_ROOT": str(runs_root),
                            "BENCH_REDIS_URL": env.server.url,
                            "BENCH_QUEUE": queues[kind],
                        },
                    )
                _measure(env, name, procs, queues, rq, rounds, seconds)
            finally:
                for proc, _ in procs.values():
                    stop_process(proc, 10)
    finally:
        rq.close()
        shutil.rmtree(root, ignore_errors=True)


def _measure(
    env: Env,
    name: str,
    procs: dict[str, tuple[Any, int]],
    queues: dict[str, str],
    rq: Any,
    rounds: int,
    seconds: float,
) -> None:
    rps: dict[tuple[str, int], list[float]] = {}
    lats: dict[tuple[str, int], list[int]] = {}
    for _ in range(rounds):
        for clients in CLIENTS:
            for kind in VARIANTS:
                res = _load(kind, procs[kind][1], clients, seconds)
                # every request enqueued a real job (warm-up ones too)
                queued = rq.llen(f"rq:queue:{queues[kind]}")
                if queued < res["sent"]:
                    raise SystemExit(f"endpoint {kind}: {res['sent']} requests, {queued} jobs")
                rq.flushdb()
                rps.setdefault((kind, clients), []).append(res["requests"] / res["seconds"])
                lats.setdefault((kind, clients), []).extend(res["latencies_us"])
    title = f"endpoint request (gunicorn {name}): build_climate over HTTP"
    print(f"\n== {title}")
    print(f"   {'variant':<24}{'clients':>8}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'n':>7}")
    table: dict[str, Any] = {}
    for clients in CLIENTS:
        for kind in VARIANTS:
            xs = lats[(kind, clients)]
            p50, p99 = med_p99([x * 1000 for x in xs])  # ns in, us out
            r = statistics.median(rps[(kind, clients)])
            row = f"{r:>10.1f}{p50 / 1000:>9.2f}{p99 / 1000:>9.2f}{len(xs):>7}"
            print(f"   {kind:<24}{clients:>8}{row}")
            table[f"{kind}, {clients} clients"] = {
                "requests_per_s": r, "p50_ms": p50 / 1000, "p99_ms": p99 / 1000, "n": len(xs),
            }  # fmt: skip
        ratio = statistics.median(
            a / b for a, b in zip(rps[("redisprep", clients)], rps[("legacy", clients)])
        )
        table[f"ratio, {clients} clients"] = ratio
        text = f"redisprep / legacy req/s, {clients} clients: {ratio:.2f}x"
        if clients == 8:
            mark = TARGETS.check(f"endpoint req/s vs legacy, 8 clients, {name}", ratio, ">=", 1.5)
            text += f" (target >= 1.5x) {mark}"
        print(f"   {text}")
    RESULTS[title] = table
