"""``python -m redisprep migrate`` on a tree shaped like wepppy's real package layouts
(``tests/fixtures/migrate_layouts/wepppy``):

- package ``__init__`` files re-exporting submodules, one of them absent (``core/climate.py``,
  ``mods/rap/rap.py``): the recursion the first version fell into;
- ``from pkg import *`` with ``__all__`` (``rq/wepp_rq.py``) and without (``rq/project_rq.py``);
- relative imports from ``__init__.py`` and from modules;
- an import cycle through a package (``core/watershed.py`` star-imports ``wepppy.nodb.core``,
  which star-imports it back; ``core/wepp.py`` imports ``Wepp`` back through its package);
- two modules importing a name from each other (``ping``/``pong``), a module importing a
  name from itself (``rap_ts``);
- a compiled-extension stand-in (``mods/_wepprs.cpython-310-x86_64-linux-gnu.so``, no ``.py``);
- helpers nested two deep, a helper whose job is bound positionally by one endpoint and by
  keyword by another (with a default for the task), the rq-engine's shared WEPP helper
  (``job_fn=`` by keyword and through ``functools.partial``), the roads input-change helper
  with no job, a helper no endpoint calls, a helper in a dispatch table;
- the DEM endpoint whose enqueue sits in the ``else`` of ``if int(set_extent_mode) == 3:``;
- the application's own ``TaskEnum`` (``nodb/redis_prep.py``) with a member redisprep's
  bundled copy lacks.

Every verdict and every per-caller entry is asserted; ``--fix`` runs on a copy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from redisprep import Rules
from redisprep.migrate import MARKER, Project, analyse, scan_source
from redisprep.migrate.atoms import Ext
from redisprep.migrate.trace import Tracer
from support.migrate_cli import ENDPOINTS, WORKERS, copied_tree, run_migrate
from support.migrate_cli import verdicts_json as run_verdicts_json

pytestmark = pytest.mark.no_redis  # static analysis only: no server

TREE = Path(__file__).parent / "fixtures" / "migrate_layouts"
PROJECT = "wepppy/weppcloud/routes/project_bp.py"
ROADS = "wepppy/weppcloud/routes/roads_bp.py"
WEPP = "wepppy/microservices/rq_engine/wepp_routes.py"

_Callers = list[tuple[str, str, Any]]
WEPP_CALLERS = ["run_wepp", "run_wepp_watershed", "run_omni"]

# (function, task as written) -> (verdict, reason, [(endpoint, verdict, reason)] or None)
EXPECTED: dict[tuple[str, Any], tuple[str, Any, Any]] = {
    # helpers two deep: build_climate -> _clear_then_enqueue -> _clear_climate
    ("_clear_climate", "build_climate"): ("safe", None, [("build_climate", "safe", None)]),
    # the job (and the task, by default) bound positionally by one endpoint, by keyword
    # by the other
    ("_reset_and_run", None): (
        "safe", None, [("build_soils", "safe", None), ("rebuild_soils", "safe", None)],
    ),
    # the DEM case: the enqueue is only in the else arm
    ("fetch_dem", "fetch_dem"): ("unsafe", "not-on-every-path", None),
    # tasks read from the application's enum (one the bundled copy lacks)
    ("run_geneva", "run_geneva"): ("safe", None, None),
    ("run_geneva", "fetch_geneva_inputs"): ("safe", None, None),
    # nobody calls it
    ("_legacy_clear_landuse", "build_landuse"): ("unsafe", "no-caller", []),
    # in a dispatch table: the endpoint that indexes it is followed, the table is not
    ("_clear_soils", "build_soils"): (
        "unsafe", "caller-not-followed",
        [("clear_kind", "safe", None),
         ("<module> (not followed)", "unsafe", "caller-not-followed")],
    ),
    # inputs changed, nothing enqueued: must stay
    ("_invalidate_roads_timestamp", "run_roads"): (
        "unsafe", "no-job",
        [(e, "unsafe", "no-job") for e in ("upload_roads", "set_roads_params", "set_roads_config")],
    ),
    # the rq-engine's shared WEPP helper: judged per job_fn
    ("_handle_run_wepp_request", "run_wepp_hillslopes"): (
        "unsafe", "timestamps-other-task",
        [("run_wepp", "safe", None), ("run_wepp_watershed", "unsafe", "timestamps-other-task"),
         ("run_omni", "safe", None)],
    ),
    ("_handle_run_wepp_request", "run_wepp_watershed"): (
        "safe", None, [(e, "safe", None) for e in WEPP_CALLERS],
    ),
    ("_handle_run_wepp_request", "run_omni_scenarios"): (
        "covered", None, [(e, "covered", None) for e in WEPP_CALLERS],
    ),
    ("_handle_run_wepp_request", "run_path_cost_effective"): (
        "covered", None, [(e, "covered", None) for e in WEPP_CALLERS],
    ),
}  # fmt: skip


def line_of(rel: str, snippet: str, root: Path = TREE) -> str:
    lines = (root / rel).read_text("utf-8").splitlines()
    hits = [i + 1 for i, ln in enumerate(lines) if snippet in ln]
    assert len(hits) == 1, (rel, snippet, hits)
    return f"{rel}:{hits[0]}"


def verdicts_json(cwd: Path = TREE, *extra: str) -> list[dict[str, Any]]:
    return run_verdicts_json(cwd, *extra)


def _next_line(site: str) -> str:
    path, _, line = site.rpartition(":")
    return f"{path}:{int(line) + 1}"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return copied_tree(TREE, tmp_path)


def test_every_verdict_and_every_caller() -> None:
    docs = verdicts_json()
    got = {(d["function"], d["task"]): d for d in docs}
    assert set(got) == set(EXPECTED) and len(docs) == len(EXPECTED)
    for key, (verdict, reason, callers) in EXPECTED.items():
        d = got[key]
        assert (d["verdict"], d["reason"]) == (verdict, reason), (key, d["detail"])
        assert d["evidence"][0] == f"{d['path']}:{d['line']}"
        assert d["task_enum"] == {
            "source": "application",
            "where": line_of("wepppy/nodb/redis_prep.py", "class TaskEnum(Enum):"),
        }
        if callers is None:
            assert d["callers"] is None, key
            continue
        got_callers = [(c["endpoint"], c["verdict"], c["reason"]) for c in d["callers"]]
        assert got_callers == callers, key
        for c in d["callers"]:
            assert c["evidence"][0] == f"{c['path']}:{c['line']}"
            if c["reason"] != "caller-not-followed":
                assert f"{d['path']}:{d['line']}" in c["evidence"]  # the helper's call
                assert line_of(c["path"], f"def {c['endpoint']}(") == c["evidence"][0]


def test_callers_carry_their_own_chain() -> None:
    got = {(d["function"], d["task"]): d for d in verdicts_json()}
    hill = got[("_handle_run_wepp_request", "run_wepp_hillslopes")]
    by = {c["endpoint"]: c for c in hill["callers"]}
    # run_wepp: the call site in the endpoint, the helper's enqueue, the job, the stamp.
    assert by["run_wepp"]["evidence"][:4] == [
        line_of(WEPP, "async def run_wepp("),
        _next_line(line_of(WEPP, "async def run_wepp(")),
        line_of(WEPP, "async def _handle_run_wepp_request("),
        line_of(WEPP, "prep.remove_timestamp(TaskEnum.run_wepp_hillslopes)"),
    ]
    assert by["run_wepp"]["evidence"][-1] == line_of(
        "wepppy/nodb/core/wepp.py", "timestamp(TaskEnum.run_wepp_hillslopes)"
    )
    # run_omni reaches the helper through functools.partial(job_fn=run_omni_rq).
    assert (
        line_of(WEPP, "return await handler(runid, config, request)") in by["run_omni"]["evidence"]
    )
    assert line_of("wepppy/rq/wepp_rq.py", "def run_omni_rq") in by["run_omni"]["evidence"]
    assert by["run_wepp_watershed"]["detail"].startswith(
        "the job timestamps run_wepp_watershed, not run_wepp_hillslopes"
    )
    assert hill["detail"].startswith("shared by 3 caller(s), unsafe for 1: run_wepp_watershed")
    assert hill["advice"].startswith("fix the worker to timestamp run_wepp_hillslopes")
    # The helper's parameter `task` is bound from its default for both callers.
    soils = got[("_reset_and_run", None)]
    assert soils["task_value"] == "build_soils"
    assert [c["evidence"][1] for c in soils["callers"]] == [
        line_of(PROJECT, 'return _reset_and_run(f"/wc1/runs/{runid}", build_soils_rq).id'),
        line_of(PROJECT, 'return _reset_and_run(wd=f"/wc1/runs/{runid}", job_fn=build_soils_rq)'),
    ]
    # Two deep: the endpoint, the outer helper, the inner helper.
    climate = got[("_clear_climate", "build_climate")]["callers"][0]["evidence"]
    assert climate[:5] == [
        line_of(PROJECT, "def build_climate(runid):"),
        line_of(PROJECT, "return _clear_then_enqueue("),
        line_of(PROJECT, "def _clear_then_enqueue(wd, job):"),
        line_of(PROJECT, "    _clear_climate(wd)"),
        line_of(PROJECT, "def _clear_climate(wd):"),
    ]
    roads = got[("_invalidate_roads_timestamp", "run_roads")]
    assert "unsafe for 3: upload_roads (no-job" in roads["detail"]
    table = got[("_clear_soils", "build_soils")]["callers"][1]
    assert table["evidence"] == [line_of(PROJECT, '_CLEARERS = {"soils": _clear_soils}')]


def test_not_on_every_path_names_the_branch() -> None:
    got = {(d["function"], d["task"]): d for d in verdicts_json()}
    dem = got[("fetch_dem", "fetch_dem")]
    branch = line_of(PROJECT, "if int(set_extent_mode) == 3:")
    assert dem["detail"] == (
        f"fetch_dem is stamped on some paths only: the branch at {branch} does not stamp fetch_dem"
    )
    assert branch in dem["evidence"]
    assert dem["maybe_timestamped"] == ["fetch_dem"]
    assert dem["advice"].startswith("make every path of the job stamp fetch_dem")
    geneva = got[("run_geneva", "fetch_geneva_inputs")]
    assert geneva["task_value"] == "build_geneva_inputs"  # the application's value
    assert geneva["evidence"][-1] == line_of(
        "wepppy/nodb/mods/geneva.py", 'prep.timestamp("build_geneva_inputs")'
    )


def test_human_table_has_a_sub_row_per_caller() -> None:
    p = run_migrate(*ENDPOINTS, *WORKERS, cwd=TREE)
    assert p.returncode == 0, p.stderr
    blocks = {b.splitlines()[0]: b for b in p.stdout.split("\n\n") if b.strip()}
    wepp = blocks[f"{WEPP}: _handle_run_wepp_request (helper)"]
    rows = [ln.split()[1:] for ln in wepp.splitlines() if ln.startswith("         <- ")]
    assert [r[0] for r in rows] == WEPP_CALLERS * 4
    hill = wepp.split("     17  ")[0]
    assert (
        "<- run_wepp_watershed (POST /rq-engine/api/runs/{runid}/{config}/run-wepp-watershed)"
        in hill
    )
    assert "UNSAFE timestamps-other-task" in hill
    assert f"{PROJECT}: fetch_dem (POST /runs/<runid>/dem/fetch)" in blocks
    assert "callers: none (no endpoint reaches this helper)" in p.stdout
    task_line = line_of("wepppy/nodb/redis_prep.py", "class TaskEnum(Enum):")
    assert f"task names: the application's TaskEnum at {task_line}" in p.stderr
    assert "12 call(s): 5 safe, 2 covered, 5 unsafe" in p.stderr


def test_fix_removes_exactly_the_provable_calls(tree: Path) -> None:
    before = {(d["function"], d["task"]): d for d in verdicts_json(tree)}
    p = run_migrate(*ENDPOINTS, *WORKERS, "--fix", cwd=tree)
    assert p.returncode == 0, p.stderr
    fixed = [ln for ln in p.stdout.splitlines() if ln.startswith("fixed ")]
    removable = {k for k, d in before.items() if d["verdict"] in ("safe", "covered")}
    assert len(fixed) == len(removable) == 7
    left = set()
    for path in tree.rglob("*.py"):
        text = path.read_text("utf-8")
        compile(text, str(path), "exec")
        if "/weppcloud/" in str(path) or "/microservices/" in str(path):
            left |= {(f.function, f.task) for f in scan_source(text)}
    assert left == set(before) - removable
    wepp = (tree / WEPP).read_text("utf-8")
    assert "    prep.remove_timestamp(TaskEnum.run_wepp_hillslopes)\n" in wepp
    assert f"    # prep.remove_timestamp(TaskEnum.run_wepp_watershed)  {MARKER}\n" in wepp
    roads = (tree / ROADS).read_text("utf-8")
    assert roads == (TREE / ROADS).read_text("utf-8")
    assert run_migrate(*ENDPOINTS, *WORKERS, "--check", cwd=tree).returncode == 0


def test_only_takes_helpers_and_endpoints(tree: Path) -> None:
    # A helper by name.
    p = run_migrate(*ENDPOINTS, *WORKERS, "--diff", "--only", "_clear_climate", cwd=tree)
    assert p.returncode == 0, p.stderr
    assert p.stdout.count("\n-    RedisPrep.getInstance(wd).remove_timestamp") == 1
    # An endpoint whose helper is shared with an unsafe caller: nothing in the helper is
    # removed (the edit would change the other callers too), and each call says why.
    p = run_migrate(*ENDPOINTS, *WORKERS, "--fix", "--only", "run_wepp", cwd=tree)
    assert p.returncode == 0, p.stderr
    assert "removed 0 call(s)" in p.stderr
    hill = line_of(WEPP, "remove_timestamp(TaskEnum.run_wepp_hillslopes)")
    shed = line_of(WEPP, "remove_timestamp(TaskEnum.run_wepp_watershed)")
    assert (
        f"{hill}: not removed for run_wepp: the call is in _handle_run_wepp_request, shared "
        "with unsafe caller(s) run_wepp_watershed (timestamps-other-task)\n"
    ) in p.stderr
    assert (
        f"{shed}: not removed for run_wepp: the call is in _handle_run_wepp_request, shared "
        "with unsafe caller(s) run_wepp_watershed (timestamps-other-task); --only "
        "_handle_run_wepp_request removes the calls proven for every caller\n"
    ) in p.stderr
    assert (tree / WEPP).read_text("utf-8") == (TREE / WEPP).read_text("utf-8")
    # Naming the helper removes the calls proven for every caller, and only those.
    p = run_migrate(*ENDPOINTS, *WORKERS, "--fix", "--only", "_handle_run_wepp_request", cwd=tree)
    assert p.returncode == 0, p.stderr
    assert "removed 3 call(s)" in p.stderr
    wepp = (tree / WEPP).read_text("utf-8")
    assert "    prep.remove_timestamp(TaskEnum.run_wepp_hillslopes)\n" in wepp
    assert f"    # prep.remove_timestamp(TaskEnum.run_wepp_watershed)  {MARKER}\n" in wepp
    # The roads endpoints: nothing removable at all, each says why.
    p = run_migrate(*ENDPOINTS, *WORKERS, "--fix", "--only", "upload_roads", cwd=tree)
    assert p.returncode == 0, p.stderr
    assert "removed 0 call(s)" in p.stderr
    assert "shared with unsafe caller(s) upload_roads (no-job), set_roads_params" in p.stderr
    assert (tree / ROADS).read_text("utf-8") == (TREE / ROADS).read_text("utf-8")
    # --force names an endpoint: a shared helper's call is not that endpoint's to force.
    p = run_migrate(
        *ENDPOINTS, *WORKERS, "--fix", "--force", "--only", "set_roads_params", cwd=tree
    )
    assert p.returncode == 0, p.stderr
    assert (tree / ROADS).read_text("utf-8") == (TREE / ROADS).read_text("utf-8")


def test_without_the_application_enum_the_bundled_one_is_used_and_said(tree: Path) -> None:
    enum_py = tree / "wepppy/nodb/redis_prep.py"
    text = enum_py.read_text("utf-8")
    enum_py.write_text(text.split("class TaskEnum")[0] + "from redisprep import TaskEnum\n")
    got = {(d["function"], d["task"]): d for d in verdicts_json(tree)}
    for d in got.values():
        assert d["task_enum"] == {"source": "bundled", "where": None}
    geneva = got[("run_geneva", "fetch_geneva_inputs")]
    # The bundled copy does not know the task: its string stamp is not recognised.
    assert (geneva["task_value"], geneva["verdict"]) == ("fetch_geneva_inputs", "unsafe")
    p = run_migrate(*ENDPOINTS, *WORKERS, cwd=tree)
    assert (
        "task names: no application TaskEnum found in the analysed tree; "
        "using redisprep's bundled copy"
    ) in p.stderr


def test_unresolvable_names_are_not_followed_never_fatal() -> None:
    sources = [(str(p), p.read_text("utf-8")) for p in sorted(TREE.rglob("*.py"))]
    project = Project(sources)
    tracer = Tracer(project)
    ev = tracer.ev
    jobs = project.find("wepppy.rq.project_rq")
    assert jobs is not None
    frame = ev.module_frame(jobs)
    assert ev.lookup("RAP", frame) == {Ext("wepppy.nodb.mods.rap.rap.RAP")}  # absent submodule
    assert ev.lookup("Climate", frame) == {Ext("wepppy.nodb.core.climate.Climate")}
    assert ev.lookup("Shared", frame) == frozenset()  # ping <-> pong: nobody defines it
    rap_ts = project.find("wepppy.nodb.mods.rap.rap_ts")
    assert rap_ts is not None
    assert ev.lookup("RAP_TS_ALIAS", ev.module_frame(rap_ts)) == frozenset()
    assert {type(a).__name__ for a in ev.lookup("Watershed", frame)} == {"Cls"}
    watershed = project.find("wepppy.nodb.core.watershed")
    assert watershed is not None  # ``Wepp`` through the star-import cycle with its package
    assert {type(a).__name__ for a in ev.lookup("Wepp", ev.module_frame(watershed))} == {"Cls"}
    wepp_rq = project.find("wepppy.rq.wepp_rq")
    assert wepp_rq is not None
    line = int(line_of("wepppy/rq/wepp_rq.py", "def run_wepp_rq").rpartition(":")[2])
    run_wepp_rq = tracer.function_at(wepp_rq, line, "run_wepp_rq")
    assert run_wepp_rq is not None
    trace = tracer.follow(run_wepp_rq, None, {})
    assert [n.message for n in trace.notes] == [
        "wepppy.nodb.mods._wepprs.make_hillslopes: outside the analysed tree, not followed"
    ]
    assert set(trace.stamps) == {"run_wepp_hillslopes", "run_wepp_watershed"}
    # A subset of the tree (controllers missing) still gives a verdict for every call.
    findings = [f for p, t in sources if "/weppcloud/" in p for f in scan_source(t, p)]
    subset = Project([(p, t) for p, t in sources if "/nodb/core/" not in p])
    verdicts = analyse(subset, findings, Rules.load())
    assert len(verdicts) == len(findings) == 8
    dem = next(v for v in verdicts if v.finding.function == "fetch_dem")
    assert (dem.verdict, dem.reason) == ("unsafe", "never-timestamped")  # Ron is not there
    assert [n.message for n in dem.notes] == [
        "wepppy.nodb.core.Ron().fetch_dem: outside the analysed tree, not followed"
    ]


def test_bad_files_are_reported_and_skipped(tree: Path) -> None:
    (tree / "wepppy/rq/broken_rq.py").write_text("def f(:\n", "utf-8")
    (tree / "wepppy/rq/nul_rq.py").write_bytes(b"x = 1\x00\n")
    (tree / "wepppy/weppcloud/routes/broken_bp.py").write_text("print 'py2'\n", "utf-8")
    p = run_migrate(*ENDPOINTS, *WORKERS, "--format", "json", cwd=tree)
    assert p.returncode == 2  # an endpoint module was skipped
    docs = json.loads(p.stdout)
    assert len(docs) == len(EXPECTED)  # everything else is still judged
    assert (
        "redisprep migrate: error: wepppy/weppcloud/routes/broken_bp.py:1: cannot parse" in p.stderr
    )
    got = {(d["function"], d["task"]): d["verdict"] for d in docs}
    assert got[("run_geneva", "run_geneva")] == "safe"
    # A worker module that cannot be parsed is skipped with a warning once reached.
    (tree / "wepppy/rq/__init__.py").write_text(
        "from .project_rq import *\nfrom .broken_rq import *\n"
    )
    p = run_migrate("wepppy/weppcloud/routes/project_bp.py", *WORKERS, "--format", "json", cwd=tree)
    assert p.returncode == 0, p.stderr
    assert "redisprep migrate: warning: wepppy/rq/broken_rq.py:1: cannot parse" in p.stderr
    assert "(skipped)" in p.stderr


def test_deep_chains_end_without_raising(tmp_path: Path) -> None:
    """Far deeper than any limit: 300 helpers calling each other in a line, 300 modules
    aliasing a name, a class inheriting from itself through 3 modules."""
    helpers = "".join(f"def h{i}(wd):\n    return h{i + 1}(wd)\n\n\n" for i in range(300))
    routes = (
        "from flask import Blueprint\nfrom redisprep import RedisPrep, TaskEnum\n"
        "from alias299 import job\nfrom k0 import K\n\nbp = Blueprint('b', __name__)\n\n\n"
        + helpers
        + "def h300(wd):\n    RedisPrep.getInstance(wd).remove_timestamp(TaskEnum.build_soils)\n"
        "    K().go()\n    return job\n\n\n"
        "@bp.route('/x', methods=['POST'])\ndef ep(wd, q):\n    q.enqueue(h0(wd), wd)\n"
    )
    sources = [("routes.py", routes)]
    sources.append(("alias0.py", "def job(wd):\n    return wd\n"))
    sources += [
        (f"alias{i}.py", f"from alias{i - 1} import job as j\njob = j\n") for i in range(1, 300)
    ]
    sources += [
        (f"k{i}.py", f"from k{(i + 1) % 3} import K as B\n\nclass K(B):\n    pass\n")
        for i in range(3)
    ]
    sources = [(str(tmp_path / p), t) for p, t in sources]
    for p, t in sources:
        Path(p).write_text(t, "utf-8")
    project = Project(sources)
    verdicts = analyse(project, scan_source(routes, sources[0][0]), Rules.load())
    # The search from the endpoint stops long before h300: the helper's one caller it
    # cannot explain is named, and the call is unsafe.
    assert [(v.verdict, v.reason, [c.endpoint for c in v.callers or []]) for v in verdicts] == [
        ("unsafe", "caller-not-followed", ["h299 (not followed)"])
    ]


def test_worker_report_reads_the_application_enum() -> None:
    p = run_migrate(*ENDPOINTS, *WORKERS, "--report", "--format", "json", cwd=TREE)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    geneva = "wepppy/nodb/mods/geneva.py"
    expected = {"build_geneva_inputs": [line_of(geneva, 'prep.timestamp("build_geneva_inputs")')]}
    if "run_geneva" not in Rules.load().tasks:  # the default rules may know it
        expected["run_geneva"] = [line_of(geneva, "prep.timestamp(TaskEnum.run_geneva)")]
    assert doc["timestamped_not_in_rules"] == expected
    task_line = line_of("wepppy/nodb/redis_prep.py", "class TaskEnum(Enum):")
    assert f"task names: the application's TaskEnum at {task_line}" in p.stderr


def test_each_binding_of_a_task_parameter_is_judged(tmp_path: Path) -> None:
    """One endpoint calling the helper with two different tasks: both are judged, and
    the one its job does not stamp keeps the call."""
    routes = (
        "from flask import Blueprint\nfrom rq import Queue\n"
        "from redisprep import RedisPrep, TaskEnum\nimport jobs\nbp = Blueprint('b', __name__)\n\n"
        "def _reset(wd, task):\n    RedisPrep.getInstance(wd).remove_timestamp(task)\n\n"
        "@bp.route('/x', methods=['POST'])\ndef ep(wd):\n"
        "    _reset(wd, TaskEnum.build_soils)\n    _reset(wd, task=TaskEnum.build_climate)\n"
        "    Queue('q').enqueue(jobs.soils_rq, wd)\n"
    )
    jobs = (
        "from redisprep import RedisPrep, TaskEnum\n\ndef soils_rq(wd):\n"
        "    RedisPrep.getInstance(wd).timestamp(TaskEnum.build_soils)\n"
    )
    sources = [(str(tmp_path / "routes.py"), routes), (str(tmp_path / "jobs.py"), jobs)]
    (v,) = analyse(Project(sources), scan_source(routes, sources[0][0]), Rules.load())
    assert (v.verdict, v.reason) == ("unsafe", "timestamps-other-task")
    assert [(c.endpoint, c.verdict, c.detail.split(")")[0]) for c in v.callers or []] == [
        ("ep", "safe", "(task build_soils, bound by this call"),
        ("ep", "unsafe", "(task build_climate, bound by this call"),
    ]
