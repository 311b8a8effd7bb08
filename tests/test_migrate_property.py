"""Property: ``migrate --fix`` never removes an ``unsafe`` call, removes every call
the job side provably stamps, and the fixed module still parses.

Hypothesis writes an endpoint module and a jobs module of a random shape (the
stamp in the job, in a helper, in a controller method, at the end of a chain, in
one of two run-time alternatives, or nowhere) stamping a random set of tasks,
while the endpoint clears another random set. The ground truth is known from the
generator; the analysis is run in-process on the generated text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redisprep import Rules
from redisprep.migrate import Project, analyse, fix_source, scan_source
from redisprep.migrate.verdict import Coverage

pytestmark = pytest.mark.no_redis  # no server: pytest -m no_redis

POOL = [
    "build_climate",
    "build_soils",
    "build_landuse",
    "run_rhem",
    "run_wepp_watershed",
    "run_omni_scenarios",
    "build_rusle",
    "fetch_rap_ts",
]
SHAPES = ["direct", "helper", "controller", "chain", "alternatives", "branches", "except", "none"]
RULES = Rules.load()
COVERAGE = Coverage(RULES)
VALUE = {"fetch_rap_ts": "build_rap_ts"}


def _stamps(tasks: list[str], indent: str = "    ") -> str:
    lines = [f"{indent}prep = RedisPrep.getInstance(runid)"]
    lines += [f"{indent}prep.timestamp(TaskEnum.{t})" for t in tasks]
    return "\n".join(lines) + "\n"


def _modules(shape: str, cleared: list[str], s1: list[str], s2: list[str]) -> tuple[str, str]:
    jobs = "from rq import Queue\n\nfrom redisprep import RedisPrep, TaskEnum\n\n\n"
    jobs += "class Ctl:\n    @classmethod\n    def getInstance(cls, wd):\n        return cls()\n\n"
    jobs += "    def work(self, runid):\n" + _stamps(s1, "        ") + "\n\n"
    jobs += "def _stamp_all(runid):\n" + _stamps(s1) + "\n\n"
    body = {
        "direct": _stamps(s1),
        "helper": "    _stamp_all(runid)\n",
        "controller": "    Ctl.getInstance(runid).work(runid)\n",
        "chain": "    Queue('q').enqueue(job_tail, runid)\n",
        "alternatives": _stamps(s1),
        "branches": _stamps(s1),
        "except": "    try:\n        return runid\n    except OSError:\n" + _stamps(s1, "        "),
        "none": _stamps(s1),
    }[shape]
    jobs += "def job_a(runid):\n" + body + "\n\n"
    jobs += "def job_b(runid):\n" + _stamps(s2) + "\n\n"
    jobs += "def job_tail(runid):\n" + _stamps(s1)
    routes = (
        "from flask import Blueprint\n\nimport jobs\nfrom redisprep import RedisPrep, TaskEnum\n\n"
    )
    routes += "bp = Blueprint('b', __name__)\n\n\n@bp.route('/x', methods=['POST'])\n"
    routes += "def endpoint(runid, q, flag):\n    prep = RedisPrep.getInstance(runid)\n"
    routes += "".join(f"    prep.remove_timestamp(TaskEnum.{t})\n" for t in cleared)
    if shape == "alternatives":
        routes += "    fn = jobs.job_a if flag else jobs.job_b\n    q.enqueue_call(fn, (runid,))\n"
    elif shape == "branches":
        routes += "    if flag:\n        q.enqueue(jobs.job_a, runid)\n"
        routes += "    elif q:\n        q.enqueue(jobs.job_b, runid)\n"
        routes += "    else:\n        q.enqueue_call(jobs.job_a, (runid,))\n"
    elif shape != "none":
        routes += "    q.enqueue_call(func=jobs.job_a, args=(runid,))\n"
    routes += "    return 'ok'\n"
    return routes, jobs


def _provable(shape: str, s1: list[str], s2: list[str]) -> set[str]:
    if shape in ("none", "except"):
        return set()
    stamped = set(s1) & set(s2) if shape in ("alternatives", "branches") else set(s1)
    return {VALUE.get(t, t) for t in stamped}


def _removable(task: str, definite: set[str]) -> bool:
    x = VALUE.get(task, task)
    if x in definite:
        return True
    return any(not COVERAGE.missing(x, y) and COVERAGE.check(x, y) for y in definite)


tasks = st.lists(st.sampled_from(POOL), min_size=0, max_size=3, unique=True)


@settings(max_examples=80, deadline=None)
@given(
    shape=st.sampled_from(SHAPES),
    cleared=st.lists(st.sampled_from(POOL), min_size=1, max_size=3, unique=True),
    s1=tasks,
    s2=tasks,
)
def test_fix_never_removes_an_unsafe_call(
    shape: str, cleared: list[str], s1: list[str], s2: list[str]
) -> None:
    routes, jobs = _modules(shape, cleared, s1, s2)
    project = Project([("routes.py", routes), ("jobs.py", jobs)])
    verdicts = analyse(project, scan_source(routes, "routes.py"), RULES)
    by_finding = {v.finding: v for v in verdicts}
    new, fixed = fix_source(routes, "routes.py", allow=lambda f: by_finding[f].removable)
    compile(new, "routes.py", "exec")
    definite = _provable(shape, s1, s2)
    removed = {f.task for f in fixed}
    for v in verdicts:
        task = v.finding.task or ""
        assert (task in removed) == v.removable
        assert v.removable == _removable(task, definite), (shape, task, definite, v.detail)
        if v.verdict == "unsafe":
            assert task not in removed
            assert f"prep.remove_timestamp(TaskEnum.{task})\n" in new
    assert [f.task for f in scan_source(new, "routes.py")] == [
        t for t in cleared if not _removable(t, definite)
    ]
