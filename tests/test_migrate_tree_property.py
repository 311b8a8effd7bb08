"""Property: on random package trees with the shapes real code has, the migration never
raises, finishes in bounded time, and gets a planted safe call and a planted unsafe call
right.

Hypothesis writes a tree (files on disk: package names come from ``__init__.py`` files)
with import cycles of length 1-3 through a package, a package re-exporting a submodule
that is missing, star imports with and without ``__all__``, a re-export chain up to 50
modules deep in front of the safe job, and the two planted ``remove_timestamp`` calls
either in the endpoint, in a helper, in a helper of a helper, or in mutually recursive
helpers. The safe job stamps the task its endpoint clears; the unsafe one stamps nothing
(it only touches the names the cycles and the missing module leave unresolved)."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redisprep import Rules
from redisprep.migrate import Project, analyse, scan_source

pytestmark = pytest.mark.no_redis  # static analysis only: no server

RULES = Rules.load()
MODES = ["direct", "helper", "nested", "mutual"]
PREAMBLE = "from rq import Queue\n\nfrom redisprep import RedisPrep, TaskEnum\n"


def _chain(depth: int, star: bool, with_all: bool) -> dict[str, str]:
    files = {
        "tree/chain/__init__.py": f"from .c{depth} import job_safe\n",
        "tree/chain/c0.py": (
            PREAMBLE + "from tree.cyc import *\nfrom tree.missing import Gone\n\n\n"
            "def job_safe(runid):\n    Gone.prepare(runid)\n    Loop.spin(runid)\n"
            "    RedisPrep.getInstance(runid).timestamp(TaskEnum.build_soils)\n"
        ),
    }
    for i in range(1, depth + 1):
        link = f"from .c{i - 1} import *\n" if star else f"from .c{i - 1} import job_safe\n"
        files[f"tree/chain/c{i}.py"] = link + ("__all__ = ['job_safe']\n" if with_all else "")
    return files


def _cycle(n: int) -> dict[str, str]:
    files = {"tree/cyc/__init__.py": "from .c0 import *\n"}
    for i in range(n):  # c_i imports Loop from c_(i+1): nobody defines it (n == 1: itself)
        files[f"tree/cyc/c{i}.py"] = f"from tree.cyc.c{(i + 1) % n} import Loop\n"
    return files


def _planted(tag: str, task: str, job: str, mode: str) -> str:
    clear = f"RedisPrep.getInstance(wd).remove_timestamp(TaskEnum.{task})"
    enqueue = f"Queue('q').enqueue({job}, runid)"
    helpers = ""
    if mode == "direct":
        body = f"    wd = runid\n    {clear}\n    return {enqueue}\n"
    elif mode == "helper":
        helpers = f"def _clear_{tag}(wd):\n    {clear}\n\n\n"
        body = f"    _clear_{tag}(runid)\n    return {enqueue}\n"
    elif mode == "nested":
        helpers = (
            f"def _clear_{tag}(wd):\n    {clear}\n\n\n"
            f"def _outer_{tag}(runid, job):\n    _clear_{tag}(runid)\n"
            "    return Queue('q').enqueue(job, runid)\n\n\n"
        )
        body = f"    return _outer_{tag}(runid, job={job})\n"
    else:  # mutually recursive helpers
        helpers = (
            f"def _ping_{tag}(wd, n):\n    if n:\n        _pong_{tag}(wd, n - 1)\n"
            f"    {clear}\n\n\n"
            f"def _pong_{tag}(wd, n):\n    _ping_{tag}(wd, n)\n\n\n"
        )
        body = f"    _ping_{tag}(runid, 3)\n    return {enqueue}\n"
    route = f"@bp.route('/{tag}', methods=['POST'])\ndef ep_{tag}(runid):\n"
    return helpers + route + body + "\n\n"


def _tree(
    depth: int, star: bool, with_all: bool, cycle: int, jobs_all: bool, modes: tuple[str, str]
) -> dict[str, str]:
    files = {"tree/__init__.py": "", **_chain(depth, star, with_all), **_cycle(cycle)}
    files["tree/missing/__init__.py"] = "from .absent import Gone\nfrom .also_absent import *\n"
    files["tree/jobs/__init__.py"] = "from .unsafe_jobs import *\n" + (
        "__all__ = ['job_unsafe']\n" if jobs_all else ""
    )
    files["tree/jobs/unsafe_jobs.py"] = (
        "from tree.cyc import *\nfrom tree.missing import Gone\nfrom tree.jobs import *\n\n\n"
        "def job_unsafe(runid):\n    Gone.prepare(runid)\n    Loop.spin(runid)\n"
        "    return job_unsafe\n"
    )
    files["tree/routes/__init__.py"] = ""
    files["tree/routes/api.py"] = (
        "from flask import Blueprint\n\n" + PREAMBLE + "from tree.chain import job_safe\n"
        "from tree.jobs import *\nfrom tree.cyc import *\n\nbp = Blueprint('b', __name__)\n\n\n"
        + _planted("s", "build_soils", "job_safe", modes[0])
        + _planted("u", "build_climate", "job_unsafe", modes[1])
    )
    return files


@settings(max_examples=30, deadline=None)
@given(
    depth=st.integers(0, 50),
    star=st.booleans(),
    with_all=st.booleans(),
    cycle=st.integers(1, 3),
    jobs_all=st.booleans(),
    modes=st.tuples(st.sampled_from(MODES), st.sampled_from(MODES)),
)
def test_random_trees_never_raise_and_planted_verdicts_hold(
    depth: int, star: bool, with_all: bool, cycle: int, jobs_all: bool, modes: tuple[str, str]
) -> None:
    with tempfile.TemporaryDirectory(prefix="redisprep-tree-") as root:
        sources = []
        for rel, text in _tree(depth, star, with_all, cycle, jobs_all, modes).items():
            path = Path(root, rel)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, "utf-8")
            sources.append((str(path), text))
        api = os.path.join(root, "tree/routes/api.py")
        findings = scan_source(Path(api).read_text("utf-8"), api)
        started = time.monotonic()
        verdicts = analyse(Project(sources), findings, RULES, [api])
        assert time.monotonic() - started < 10
    got = {v.task: v for v in verdicts}
    assert set(got) == {"build_soils", "build_climate"}
    safe, unsafe = got["build_soils"], got["build_climate"]
    assert safe.verdict == "safe", (modes, depth, star, safe.detail)
    assert unsafe.verdict == "unsafe", (modes, unsafe.detail)
    if modes[0] != "direct":  # judged per calling endpoint
        assert [(c.endpoint, c.verdict) for c in safe.callers or []] == [("ep_s", "safe")]
    if modes[1] != "direct":
        assert [(c.endpoint, c.verdict) for c in unsafe.callers or []] == [("ep_u", "unsafe")]
