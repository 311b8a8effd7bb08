"""How long ``python -m redisprep migrate --workers`` takes on a wepppy-sized tree.

Generates a tree shaped like wepppy's routes, jobs and controllers (several
hundred modules, about 5 MB of Python: Flask endpoints that clear timestamps and
enqueue jobs through a helper, jobs that call controller methods, controllers
with base classes and mixins, chains of jobs, padding code the analysis must
parse; package ``__init__`` files re-exporting the controllers and jobs, one of them
from a submodule that is not in the tree, controllers importing each other back
through their package, a helper shared by several endpoints in each route module),
then times the whole command (a fresh process, as a user runs it) over a few runs
and prints the median. The target is under 5 s.

    python bench/bench_migrate.py [--runs 5] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

TASKS = [
    "build_climate", "build_soils", "build_landuse", "fetch_dem", "build_channels",
    "abstract_watershed", "run_wepp_hillslopes", "run_wepp_watershed", "run_rhem",
    "run_debris", "run_watar", "build_rusle", "run_omni_scenarios", "fetch_rap_ts",
]  # fmt: skip
N_ROUTES, N_ENDPOINTS = 40, 20
N_JOBS, N_JOB_FNS = 150, 20
N_CTRL, N_METHODS = 250, 30


def _padding(i: int, n: int) -> str:
    """Ordinary code the parser and the indexer must get through."""
    out = []
    for k in range(n):
        out.append(
            f"def _util_{i}_{k}(values, scale=1.0):\n"
            f'    """Helper {k}: scale, clip and summarise a list of values."""\n'
            "    total = 0.0\n"
            "    for v in values:\n"
            "        if v is None:\n"
            "            continue\n"
            "        total += min(max(v * scale, 0.0), 1e9)\n"
            "    return {'n': len(values), 'total': total, 'mean': total / max(len(values), 1)}\n\n"
        )
    return "\n".join(out)


def write_tree(root: str) -> tuple[int, int]:
    files = 0
    size = 0

    def put(rel: str, text: str) -> None:
        nonlocal files, size
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        files += 1
        size += len(text.encode())

    for pkg in ("wepppy", "wepppy/weppcloud", "wepppy/weppcloud/routes"):
        put(f"{pkg}/__init__.py", "")
    # Package re-exports, like wepppy.nodb.core: every controller, plus one submodule
    # that is not in the tree (a compiled extension, another repository).
    put(
        "wepppy/nodb/__init__.py",
        "from .base import NoDbBase\nfrom .native import NativeThing\n"
        + "".join(f"from .ctrl_{c} import Ctrl{c}\n" for c in range(N_CTRL))
        + "\n__all__ = ["
        + ", ".join(f"'Ctrl{c}'" for c in range(N_CTRL))
        + "]\n",
    )
    put("wepppy/rq/__init__.py", "".join(f"from .jobs_{j} import *\n" for j in range(N_JOBS)))
    put(
        "wepppy/nodb/base.py",
        "class NoDbBase:\n    def __init__(self, wd):\n        self.wd = wd\n\n"
        "    @classmethod\n    def getInstance(cls, wd):\n        return cls(wd)\n",
    )
    for c in range(N_CTRL):
        task = TASKS[c % len(TASKS)]
        methods = []
        for m in range(N_METHODS):
            stamp = (
                f"        RedisPrep.getInstance(self.wd).timestamp(TaskEnum.{task})\n"
                if m == 0
                else f"        self._helper_{m}()\n"
            )
            methods.append(f"    def method_{m}(self):\n        self.dump()\n{stamp}")
            methods.append(f"    def _helper_{m}(self):\n        return self.wd\n")
        put(
            f"wepppy/nodb/ctrl_{c}.py",
            "from wepppy.nodb.base import NoDbBase\n"
            "from wepppy.nodb.redis_prep import RedisPrep, TaskEnum\n"
            # an import cycle through the package: the package imports this module
            f"from wepppy.nodb import Ctrl{(c + 1) % N_CTRL}, NativeThing\n\n\n"
            f"class Mixin{c}:\n    def dump(self):\n"
            f"        return Ctrl{(c + 1) % N_CTRL}, NativeThing\n\n\n"
            f"class Ctrl{c}(Mixin{c}, NoDbBase):\n" + "\n".join(methods) + "\n\n" + _padding(c, 25),
        )
    put("wepppy/nodb/redis_prep.py", "from redisprep import RedisPrep, TaskEnum\n")
    for j in range(N_JOBS):
        fns = []
        for k in range(N_JOB_FNS):
            c = (j * N_JOB_FNS + k) % N_CTRL
            if k % 5 == 4:  # a chain: the job enqueues the next one
                body = f"    q.enqueue_call(job_{j}_{k - 1}, (runid,), depends_on=None)\n"
            else:
                body = f"    ctrl = Ctrl{c}.getInstance(get_wd(runid))\n    ctrl.method_0()\n"
            fns.append(f"def job_{j}_{k}(runid, q=None):\n{body}")
        imports = "".join(  # through the package's re-exports
            f"from wepppy.nodb import Ctrl{(j * N_JOB_FNS + k) % N_CTRL}\n"
            for k in range(N_JOB_FNS)
        )
        put(
            f"wepppy/rq/jobs_{j}.py",
            "import os\n\n" + imports + "\n\ndef get_wd(runid):\n"
            "    return os.path.join('/wc1/runs', runid)\n\n\n"
            + f"__all__ = [{', '.join(repr(f'job_{j}_{k}') for k in range(N_JOB_FNS))}]\n\n\n"
            + "\n\n".join(fns)
            + "\n\n"
            + _padding(j, 20),
        )
    for r in range(N_ROUTES):
        eps = []
        for e in range(N_ENDPOINTS):
            j = (r * N_ENDPOINTS + e) % N_JOBS
            k = e % N_JOB_FNS
            c = (j * N_JOB_FNS + k) % N_CTRL
            task = TASKS[c % len(TASKS)] if k % 5 != 4 else TASKS[(c - 1) % len(TASKS)]
            head = (
                f"@bp.route('/runs/<runid>/<config>/rq/api/ep_{r}_{e}', methods=['POST'])\n"
                f"def api_{r}_{e}(runid, config):\n"
                "    prep = RedisPrep.getInstance(get_wd(runid))\n"
            )
            if e % 4 == 3:  # the clear in a shared helper, the job through the package
                eps.append(
                    head + f"    return _clear_and_enqueue(prep, TaskEnum.{task}, "
                    f"job_{j}_{k}, runid)\n"
                )
            else:
                eps.append(
                    head + f"    prep.remove_timestamp(TaskEnum.{task})\n"
                    f"    return _enqueue(prep, jobs_{j}.job_{j}_{k}, runid)\n"
                )
        imports = "".join(
            f"from wepppy.rq import jobs_{(r * N_ENDPOINTS + e) % N_JOBS}\n"
            if e % 4 != 3
            else f"from wepppy.rq import job_{(r * N_ENDPOINTS + e) % N_JOBS}_{e % N_JOB_FNS}\n"
            for e in range(N_ENDPOINTS)
        )
        put(
            f"wepppy/weppcloud/routes/api_{r}.py",
            "import os\n\nfrom flask import Blueprint\nfrom rq import Queue\n\n"
            "from wepppy.nodb.redis_prep import RedisPrep, TaskEnum\n" + imports + "\n"
            "bp = Blueprint('api', __name__)\n\n\ndef get_wd(runid):\n"
            "    return os.path.join('/wc1/runs', runid)\n\n\n"
            "def _enqueue(prep, func, runid):\n"
            "    job = Queue('default').enqueue_call(func, (runid,), timeout=600)\n"
            "    prep.set_rq_job_id(func.__name__, job.id)\n    return job.id\n\n\n"
            "def _clear_and_enqueue(prep, task, func, runid):\n"
            "    prep.remove_timestamp(task)\n"
            "    return _enqueue(prep, func, runid)\n\n\n" + "\n\n".join(eps),
        )
    return files, size


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--keep", metavar="DIR", help="write the tree here and keep it")
    args = ap.parse_args()
    root = args.keep or tempfile.mkdtemp(prefix="redisprep-bench-migrate-")
    files, size = write_tree(root)
    cmd = [
        sys.executable, "-m", "redisprep", "migrate", "wepppy/weppcloud",
        "--workers", "wepppy/rq", "wepppy/nodb", "--format", "json",
    ]  # fmt: skip
    times = []
    cpu = []
    out = b""
    for _ in range(args.runs):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        p = subprocess.run(cmd, cwd=root, capture_output=True, check=False)
        times.append(time.perf_counter() - t0)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
        if p.returncode != 0:
            print(p.stderr.decode(), file=sys.stderr)
            return 1
        out = p.stdout
    import json

    docs = json.loads(out)
    counts: dict[str, int] = {}
    for d in docs:
        counts[d["verdict"]] = counts.get(d["verdict"], 0) + 1
    med = statistics.median(times)
    print(f"tree: {files} modules, {size / 1e6:.1f} MB of Python, {len(docs)} calls ({counts})")
    print(
        f"migrate --workers (whole process): median {med:.2f} s, "
        f"min {min(times):.2f} s, max {max(times):.2f} s over {args.runs} runs"
    )
    print(
        f"CPU time (user+sys, what a quiet machine's wall time approaches): "
        f"median {statistics.median(cpu):.2f} s; load average now {os.getloadavg()[0]:.1f}"
    )
    print(f"target < 5 s: {'PASS' if med < 5 else 'MISS'} ({med / 5:.2f}x of the budget)")
    if not args.keep:
        import shutil

        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
