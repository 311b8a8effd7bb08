"""``python -m redisprep migrate --workers``: the job side is verified before a call
is removed. The fixture tree (``tests/fixtures/migrate_tree/wepppy``) is shaped like
wepppy: Flask endpoints in ``weppcloud/routes/rq/api/api.py``, FastAPI routes in
``microservices/rq_engine/``, jobs in ``rq/``, controllers in ``nodb/`` (mixins,
delegated services, base classes). Each endpoint is one of the shapes the
migration must tell apart; every verdict, reason and evidence chain is asserted,
the JSON is checked against its schema, ``--fix`` is run on a copy and the fixed
Flask app is driven with the Flask test client against a private Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import redis
from rq import Queue

from redisprep import RedisPrep, Rules, TaskEnum
from redisprep.migrate import MARKER, Project, analyse, scan_source
from support.migrate_cli import ENDPOINTS, SCHEMA, WORKERS, copied_tree, run_migrate
from support.migrate_cli import verdicts_json as run_verdicts_json
from support.redis_server import url_with_db

TREE = Path(__file__).parent / "fixtures" / "migrate_tree"
API = "wepppy/weppcloud/routes/rq/api/api.py"

# (function, task as written) -> (verdict, reason, timestamped, jobs, where the proof is)
EXPECTED: dict[tuple[str, str], tuple[str, Any, list[str], list[str], Any]] = {
    # 1. the timestamp is in the job (a `module.func` reference, through a helper)
    ("api_build_climate", "build_climate"): (
        "safe", None, ["build_climate"], ["build_climate_rq"],
        ("wepppy/rq/project_rq.py", "RedisPrep.getInstance(wd).timestamp(TaskEnum.build_climate)"),
    ),
    # 6. downstream clear NOT covered: build_climate cascades to run_roads, but no check
    # compares run_roads with build_climate (the roads check reads only @W)
    ("api_build_climate", "run_roads"): (
        "unsafe", "timestamps-other-task", ["build_climate"], ["build_climate_rq"], None,
    ),
    # 2. in an inherited mixin method of the controller (job imported under an alias)
    ("api_fetch_dem", "fetch_dem"): (
        "safe", None, ["fetch_dem"], ["fetch_dem_rq"],
        ("wepppy/nodb/mixins.py", "timestamp(TaskEnum.fetch_dem)"),
    ),
    # 2. in a service the controller delegates to (q.enqueue, not enqueue_call)
    ("api_build_subcatchments", "build_subcatchments"): (
        "safe", None, ["build_subcatchments"], ["build_subcatchments_rq"],
        ("wepppy/nodb/core/watershed.py", "prep.timestamp(TaskEnum.build_subcatchments)"),
    ),
    # 3. a chain three jobs deep (enqueue_call positional and func=)
    ("api_abstract_watershed", "abstract_watershed"): (
        "safe", None, ["abstract_watershed"],
        ["abstract_watershed_rq", "_abstract_stage2_rq", "_abstract_stage3_rq"],
        ("wepppy/rq/project_rq.py", "timestamp(TaskEnum.abstract_watershed)"),
    ),
    # 3. the job chosen at run time: both alternatives stamp
    ("api_build_soils", "build_soils"): (
        "safe", None, ["build_soils"], ["build_soils_rq", "_soils_fast_rq"],
        ("wepppy/rq/project_rq.py", "(get_wd(runid)).timestamp(TaskEnum.build_soils)"),
    ),
    # 3./4. chosen at run time, only one alternative stamps: not proof, and the
    # reason names the call whose alternative misses it
    ("api_build_treatments", "build_treatments"): (
        "unsafe", "not-on-every-path", [],
        ["build_treatments_rq", "_treatments_apply_rq", "_treatments_preview_rq"], None,
    ),
    # 3./4. one of two jobs enqueued in an if/else; the other stamps only in `except`
    ("api_build_channels", "build_channels"): (
        "unsafe", "not-on-every-path", [],
        ["build_channels_wbt_rq", "build_channels_topaz_rq"], None,
    ),
    # 4. never timestamped (the controller records the outlet, nobody stamps it)
    ("api_set_outlet", "set_outlet"): (
        "unsafe", "never-timestamped", [], ["set_outlet_rq"], None,
    ),
    # @timestamps(...) on the job, enqueued with redisprep.rq.enqueue_recorded
    ("api_build_landuse", "build_landuse"): (
        "safe", None, ["build_landuse"], ["build_landuse_rq"],
        ("wepppy/rq/project_rq.py", "@timestamps(TaskEnum.build_landuse)"),
    ),
    # on_success=timestamp_on_success(...) passed through the helper's **kwargs
    ("api_build_rangeland_cover", "build_rangeland_cover"): (
        "safe", None, ["build_rangeland_cover"], ["build_rangeland_cover_rq"],
        (API, "done = timestamp_on_success(TaskEnum.build_rangeland_cover)"),
    ),
    # 5. the worker stamps only another task
    ("api_run_rhem", "run_rhem"): (
        "unsafe", "timestamps-other-task", ["run_roads"], ["run_rhem_rq"], None,
    ),
    # 5. an extra stamp besides X: still safe
    ("api_fetch_rap_ts", "fetch_rap_ts"): (
        "safe", None, ["build_rap_ts", "run_rhem"], ["fetch_and_analyze_rap_ts_rq"],
        ("wepppy/nodb/mods/rap_ts.py", "prep.timestamp(TaskEnum.fetch_rap_ts)"),
    ),
    # the job's module is not under --workers
    ("api_dss_export", "dss_export"): (
        "unsafe", "job-not-found", [], [], None,
    ),
    # getattr dispatch in the job: reported, never counted
    ("api_rerun_ron", "landuse_map"): (
        "unsafe", "never-timestamped", [], ["rerun_controller_rq"], None,
    ),
    # 7. deletion: the job removes the timestamp itself
    ("api_delete_climate", "build_climate"): (
        "unsafe", "deletion", [], ["delete_climate_rq"], None,
    ),
    ("api_landuse_mode", "build_landuse"): ("unsafe", "no-job", [], [], None),
    # FastAPI: async def, the enqueue delegated to a helper module
    ("build_climate", "build_climate"): (
        "safe", None, ["build_climate"], ["build_climate_rq"],
        ("wepppy/rq/project_rq.py", "RedisPrep.getInstance(wd).timestamp(TaskEnum.build_climate)"),
    ),
    # 3. chain two levels deep; the hillslope stamp in a controller method
    ("run_wepp", "run_wepp_hillslopes"): (
        "safe", None, ["run_wepp_hillslopes", "run_wepp_watershed"],
        ["run_wepp_rq", "run_hillslopes_rq"],
        ("wepppy/nodb/core/wepp.py", "RedisPrep.getInstance(self.wd).timestamp(task)"),
    ),
    ("run_wepp", "run_wepp_watershed"): (
        "safe", None, ["run_wepp_hillslopes", "run_wepp_watershed"],
        ["run_wepp_rq", "run_watershed_rq"],
        ("wepppy/rq/wepp_rq.py", "timestamp(TaskEnum.run_wepp_watershed)"),
    ),
    # 6. downstream clear covered by a cascade and a preflight check
    ("run_wepp", "run_omni_scenarios"): (
        "covered", None, ["run_wepp_hillslopes", "run_wepp_watershed"],
        ["run_wepp_rq", "run_watershed_rq"],
        ("wepppy/rq/wepp_rq.py", "timestamp(TaskEnum.run_wepp_watershed)"),
    ),
    # 5. the debris-flow controller also stamps run_watar
    ("run_debris_flow", "run_debris"): (
        "safe", None, ["run_debris", "run_watar"], ["run_debris_flow_rq"],
        ("wepppy/nodb/mods/debris_flow.py", "prep.timestamp(TE.run_debris)"),
    ),
}  # fmt: skip


def line_of(rel: str, snippet: str, root: Path = TREE) -> str:
    lines = (root / rel).read_text("utf-8").splitlines()
    hits = [i + 1 for i, ln in enumerate(lines) if snippet in ln]
    assert len(hits) == 1, (rel, snippet, hits)
    return f"{rel}:{hits[0]}"


def migrate(*args: str, cwd: Path = TREE) -> subprocess.CompletedProcess[str]:
    return run_migrate(*args, cwd=cwd)


def verdicts_json(*extra: str, cwd: Path = TREE) -> list[dict[str, Any]]:
    return run_verdicts_json(cwd, *extra)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return copied_tree(TREE, tmp_path)


def test_every_shape_gets_its_verdict_and_evidence() -> None:
    docs = verdicts_json()
    got = {(d["function"], d["task"]): d for d in docs}
    assert set(got) == set(EXPECTED)
    assert len(docs) == len(EXPECTED)
    for key, (verdict, reason, stamped, jobs, proof) in EXPECTED.items():
        d = got[key]
        assert (d["verdict"], d["reason"]) == (verdict, reason), (key, d["detail"])
        assert d["timestamped"] == stamped, key
        assert d["jobs"] == jobs, key
        assert d["evidence"][0] == f"{d['path']}:{d['line']}"
        if proof is not None:  # the chain ends on the line that proves it
            assert d["evidence"][-1] == line_of(*proof), (key, d["evidence"])
    cov = got[("run_wepp", "run_omni_scenarios")]["covered_by"]
    assert cov == {
        "task": "run_wepp_watershed",
        "check": "omni_scenarios",
        "cascade": ["run_wepp_watershed", "run_omni_scenarios"],
    }
    rhem = got[("api_run_rhem", "run_rhem")]
    assert "likely worker bug" in rhem["detail"]
    assert "run_roads's closure misses rhem, rhempost" in rhem["detail"]
    roads = got[("api_build_climate", "run_roads")]
    assert "likely worker bug" not in roads["detail"]
    assert "no preflight check turns run_roads not-done" in roads["detail"]
    chan = got[("api_build_channels", "build_channels")]
    assert chan["maybe_timestamped"] == ["build_channels"]
    treat = got[("api_build_treatments", "build_treatments")]
    assert treat["maybe_timestamped"] == ["build_treatments"]
    jobs_py = (TREE / "wepppy/rq/project_rq.py").read_text("utf-8").splitlines()
    start = jobs_py.index('def build_treatments_rq(runid, mode="apply"):')
    enqueue = jobs_py.index("    _queue().enqueue(job_fn, runid)", start)
    treat_site = f"wepppy/rq/project_rq.py:{enqueue + 1}"
    assert treat["detail"] == (
        "build_treatments is stamped on some paths only: a job or function chosen at run "
        f"time at {treat_site} does not stamp build_treatments"
    )
    assert treat_site in treat["evidence"]
    handler = line_of("wepppy/rq/project_rq.py", "except OSError:")
    assert chan["detail"].endswith(f"stamped only in the except handler at {handler}")
    dss = got[("api_dss_export", "dss_export")]
    assert "wepppy.export.dss_rq.dss_export_rq is not in the analysed tree" in dss["detail"]
    rerun = got[("api_rerun_ron", "landuse_map")]
    assert rerun["unresolved"] == [
        f"{line_of('wepppy/rq/project_rq.py', 'getattr(ron, method)()')}: "
        "getattr(ron, method)(...): dynamic dispatch, not followed"
    ]
    delete = got[("api_delete_climate", "build_climate")]
    assert delete["job_removes"] == ["build_climate"]
    assert delete["evidence"][-1] == line_of(
        "wepppy/rq/project_rq.py", "remove_timestamp(TaskEnum.build_climate)"
    )
    # The chain goes through the controller method and the service, with their lines.
    sub = got[("api_build_subcatchments", "build_subcatchments")]
    ws = "wepppy/nodb/core/watershed.py"
    assert sub["chain"][1:3] == [
        f"Watershed.build_subcatchments ({line_of(ws, 'def build_subcatchments')})",
        f"SubcatchmentService.run ({line_of(ws, 'def run(self)')})",
    ]
    for d in docs:
        assert (d["reason"] is None) == (d["verdict"] != "unsafe")
        assert (d["advice"] is None) == (d["verdict"] != "unsafe")


def test_human_table_groups_calls_by_endpoint() -> None:
    p = migrate(*ENDPOINTS, *WORKERS, "--check")
    assert p.returncode == 1  # safe calls remain to be removed
    out = p.stdout
    blocks = [b for b in out.split("\n\n") if b.strip()]
    assert len(blocks) == len({f for f, _ in EXPECTED})
    wepp = next(
        b
        for b in blocks
        if b.startswith("wepppy/microservices/rq_engine/wepp_routes.py: run_wepp ")
    )
    assert "(POST /rq-engine/api/runs/{runid}/{config}/run-wepp)" in wepp.splitlines()[0]
    rows = [ln.split() for ln in wepp.splitlines() if ln[:8].strip().isdigit()]
    assert [r[1:3] for r in rows] == [
        ["run_wepp_hillslopes", "safe"],
        ["run_wepp_watershed", "safe"],
        ["run_omni_scenarios", "covered"],
    ]
    assert "UNSAFE timestamps-other-task" in out
    assert "do: fix the worker to timestamp run_rhem" in out
    assert "22 call(s): 12 safe, 1 covered, 9 unsafe" in p.stderr
    # --strict fails on the unsafe ones even when nothing removable is left.
    assert migrate(*ENDPOINTS, *WORKERS, "--check", "--strict").returncode == 1


def test_fix_removes_only_safe_and_covered(tree: Path) -> None:
    before = {d["function"] + ":" + d["task"]: d for d in verdicts_json(cwd=tree)}
    originals = {p: p.read_text("utf-8") for p in tree.rglob("*.py")}
    p = migrate(*ENDPOINTS, *WORKERS, "--fix", cwd=tree)
    assert p.returncode == 0, p.stderr
    removed = {ln for ln in p.stdout.splitlines() if ln.startswith("fixed ")}
    assert len(removed) == sum(1 for d in before.values() if d["verdict"] in ("safe", "covered"))
    for path in originals:
        compile(path.read_text("utf-8"), str(path), "exec")
    left = {
        (f.function, f.task)
        for path in tree.rglob("*.py")
        for f in scan_source(path.read_text("utf-8"))
    }
    unsafe = {tuple(k.split(":")) for k, d in before.items() if d["verdict"] == "unsafe"}
    assert {k for k in left if k[0] != "delete_climate_rq"} == unsafe
    api_text = (tree / API).read_text("utf-8")
    assert f"    # prep.remove_timestamp(TaskEnum.build_climate)  {MARKER}\n" in api_text
    assert "    prep.remove_timestamp(TaskEnum.run_roads)\n" in api_text
    # Nothing removable is left: --check passes, --check --strict still fails (unsafe ones).
    assert migrate(*ENDPOINTS, *WORKERS, "--check", cwd=tree).returncode == 0
    assert migrate(*ENDPOINTS, *WORKERS, "--check", "--strict", cwd=tree).returncode == 1
    # Workers are never edited.
    for path, old in originals.items():
        if "/weppcloud/" not in str(path) and "/microservices/" not in str(path):
            assert path.read_text("utf-8") == old, path


def test_force_needs_only_and_only_takes_several_names(tree: Path) -> None:
    p = migrate(API, *WORKERS, "--fix", "--force", cwd=tree)
    assert p.returncode == 2 and "--only" in p.stderr
    # `--only a b API` keeps API as a path; unsafe calls stay without --force.
    p = migrate("--fix", "--only", "api_run_rhem", "api_fetch_dem", API, *WORKERS, cwd=tree)
    assert p.returncode == 0, p.stderr
    fixed = [ln for ln in p.stdout.splitlines() if ln.startswith("fixed ")]
    assert len(fixed) == 1 and "api_fetch_dem" in fixed[0]
    assert "prep.remove_timestamp(TaskEnum.run_rhem)\n" in (tree / API).read_text("utf-8")
    # --force --only removes the named endpoint's unsafe call, and only that one.
    p = migrate(API, *WORKERS, "--fix", "--force", "--only", "api_run_rhem", cwd=tree)
    assert p.returncode == 0, p.stderr
    text = (tree / API).read_text("utf-8")
    assert f"# prep.remove_timestamp(TaskEnum.run_rhem)  {MARKER}" in text
    assert "    prep.remove_timestamp(TaskEnum.set_outlet)\n" in text
    # Comma-separated works too.
    p = migrate(API, *WORKERS, "--diff", "--only", "api_build_soils,api_build_landuse", cwd=tree)
    assert p.returncode == 0
    assert p.stdout.count("\n-    prep.remove_timestamp") == 2
    # Endpoint paths swallowed by --workers: a clear error.
    p = migrate("--workers", "wepppy/rq", API, cwd=tree)
    assert p.returncode == 2 and "no endpoint PATH given" in p.stderr


def test_without_workers_it_cannot_verify_and_lists_only(tree: Path) -> None:
    p = migrate(API, "--fix", cwd=tree)
    assert p.returncode == 2
    assert "cannot verify without --workers: nothing removed" in p.stderr
    assert (tree / API).read_text("utf-8") == (TREE / API).read_text("utf-8")
    p = migrate(API, "--format", "json", cwd=tree)
    assert p.returncode == 0
    docs = json.loads(p.stdout)
    jsonschema.validate(docs, SCHEMA)
    assert {d["verdict"] for d in docs} == {"unverified"}
    assert "not verified: pass --workers" in migrate(API, cwd=tree).stderr


def test_worker_side_report_and_rules_check(tmp_path: Path) -> None:
    p = migrate(*ENDPOINTS, *WORKERS, "--report", "--format", "json")
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout)
    mism = {m["endpoint"]: m for m in rep["mismatched_jobs"]}
    assert mism["run_debris_flow"]["timestamped_not_cleared"] == ["run_watar"]
    assert mism["api_fetch_rap_ts"]["timestamped_not_cleared"] == ["run_rhem"]
    assert mism["api_run_rhem"]["cleared_not_timestamped"] == ["run_rhem"]
    assert "api_fetch_dem" not in mism
    never = rep["cleared_never_timestamped"]
    assert set(never) == {
        "dss_export",
        "landuse_map",
        "run_omni_scenarios",
        "set_outlet",
    }
    assert never["set_outlet"] == [line_of(API, "remove_timestamp(TaskEnum.set_outlet)")]
    assert rep["timestamped_not_in_rules"] == {}
    text = migrate(*ENDPOINTS, *WORKERS, "--report").stdout
    assert "Tasks that endpoints clear but no worker timestamps:\n  dss_export: cleared at" in text
    # A rules file that lacks a task the workers stamp: report it, and rules check fails.
    import redisprep

    rules = json.loads(Path(redisprep.rules_path()).read_text("utf-8"))
    del rules["tasks"]["run_roads"]
    del rules["checks"]["roads"]
    for t in rules["tasks"].values():
        t["cascades"] = [c for c in t["cascades"] if c != "run_roads"]
    rules.pop("$schema", None)
    lacking = tmp_path / "rules.json"
    lacking.write_text(json.dumps(rules), "utf-8")
    p = migrate(*ENDPOINTS, *WORKERS, "--report", "--format", "json", "--rules", str(lacking))
    assert json.loads(p.stdout)["timestamped_not_in_rules"] == {
        "run_roads": [line_of("wepppy/rq/project_rq.py", "prep.timestamp(TaskEnum.run_roads)")]
    }
    cmd = [sys.executable, "-m", "redisprep", "rules", "check"]
    workers = ["--workers", "wepppy/rq", "wepppy/nodb"]
    check = subprocess.run(
        [*cmd, str(lacking), *workers], capture_output=True, text=True, cwd=TREE, timeout=60
    )
    assert check.returncode == 1, check.stdout + check.stderr
    assert "run_roads: timestamped at wepppy/rq/project_rq.py:" in check.stderr
    ok = subprocess.run([*cmd, *workers], capture_output=True, text=True, cwd=TREE, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "0 not in the rules" in ok.stdout


def test_rules_decide_covered(tmp_path: Path) -> None:
    """Take the omni check away and the same call is no longer covered."""
    import redisprep

    rules = json.loads(Path(redisprep.rules_path()).read_text("utf-8"))
    del rules["checks"]["omni_scenarios"]
    rules.pop("$schema", None)
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(rules), "utf-8")
    docs = {(d["function"], d["task"]): d for d in verdicts_json("--rules", str(path))}
    d = docs[("run_wepp", "run_omni_scenarios")]
    assert (d["verdict"], d["reason"]) == ("unsafe", "timestamps-other-task")
    assert "no preflight check turns run_omni_scenarios not-done" in d["detail"]


# --------------------------------------------------- the fixed Flask app still runs


@pytest.fixture
def rq_conn(redis_info: Any) -> Iterator[redis.Redis[bytes]]:
    conn: redis.Redis[bytes] = redis.Redis.from_url(url_with_db(redis_info.url, 9))
    yield conn
    conn.close()


def _fresh_import(tree: Path) -> Any:
    for name in [m for m in sys.modules if m == "wepppy" or m.startswith("wepppy.")]:
        del sys.modules[name]
    sys.path.insert(0, str(tree))
    try:
        import wepppy.weppcloud.routes.rq.api.api as api  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(tree))
    return api


@pytest.mark.parametrize("state", ["original", "migrated"])
def test_fixture_app_runs_before_and_after_fix(
    tree: Path, tmp_path: Path, redis_info: Any, rq_conn: redis.Redis[bytes], state: str
) -> None:
    from flask import Flask

    docs = {(d["function"], d["task"]): d for d in verdicts_json(cwd=tree)}
    if state == "migrated":
        assert migrate(*ENDPOINTS, *WORKERS, "--fix", cwd=tree).returncode == 0
    api = _fresh_import(tree)
    try:
        runs = tmp_path / "runs"
        (runs / "run-1").mkdir(parents=True)
        app = Flask(f"verify_{state}")
        app.config.update(
            RUNS_ROOT=str(runs), RQ_REDIS_URL=url_with_db(redis_info.url, 9), RQ_QUEUE="verify"
        )
        app.register_blueprint(api.rq_api_bp)
        client = app.test_client()
        prep = RedisPrep.getInstance(str(runs / "run-1"))
        by_endpoint: dict[str, set[str]] = {}
        for (fn, task), d in docs.items():
            if d["path"] == API:
                by_endpoint.setdefault(fn, set()).add(task)
        routes = {r.endpoint.split(".")[-1]: r.rule for r in app.url_map.iter_rules()}
        for fn, tasks in by_endpoint.items():
            for t in TaskEnum:
                prep[t] = 1000
            url = routes[fn].replace("<string:runid>", "run-1").replace("<config>", "cfg")
            resp = client.post(url.replace("<method>", "set_map"))
            assert resp.status_code == 200, (fn, resp.get_data(as_text=True))
            gone = {t.name for t in TaskEnum if prep[t] is None}
            if state == "original":
                assert gone == tasks, fn
            else:  # only the unsafe calls still clear their timestamp
                unsafe = {t for t in tasks if docs[(fn, t)]["verdict"] == "unsafe"}
                assert gone == unsafe, fn
        queue = Queue("verify", connection=rq_conn)
        assert len(queue.job_ids) == len(by_endpoint) - 1  # api_landuse_mode enqueues nothing
    finally:
        for name in [m for m in sys.modules if m == "wepppy" or m.startswith("wepppy.")]:
            del sys.modules[name]


def test_demo_shows_unsafe_next_to_safe() -> None:
    import redisprep._demo.app as demo_app

    folder = os.path.dirname(demo_app.__file__ or "")
    cmd = [sys.executable, "-m", "redisprep", "migrate", demo_app.__file__ or ""]
    p = subprocess.run(
        [*cmd, "--workers", folder, "--format", "json"], capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 0, p.stderr
    docs = {d["function"]: d for d in json.loads(p.stdout)}
    assert docs["api_build_landuse"]["verdict"] == "safe"
    soils = docs["api_build_soils"]
    assert (soils["verdict"], soils["reason"]) == ("unsafe", "timestamps-other-task")
    assert soils["timestamped"] == ["build_landuse"]
    assert "likely worker bug" in soils["detail"]


def test_analysis_api_in_process() -> None:
    sources = [(str(p), p.read_text("utf-8")) for p in sorted(TREE.rglob("*.py"))]
    project = Project(sources)
    api_path = str(TREE / API)
    findings = scan_source((TREE / API).read_text("utf-8"), api_path)
    verdicts = analyse(project, findings, Rules.load())
    # With the export module analysed too, the dss job is found and proven.
    dss = next(v for v in verdicts if v.finding.function == "api_dss_export")
    assert dss.verdict == "safe"
    assert dss.evidence[-1].endswith("wepppy/export/dss_rq.py:8")


def test_star_imports_follow_all() -> None:
    """``from pkg import *`` (how wepppy imports its controllers) binds what ``__all__``
    lists, through a package ``__init__`` re-export, and nothing else."""
    ctl = (
        "from redisprep import RedisPrep, TaskEnum\n__all__ = ['Ctl']\n\n"
        "class Ctl:\n    def build(self, wd):\n"
        "        RedisPrep.getInstance(wd).timestamp(TaskEnum.build_soils)\n\n"
        "class Hidden(Ctl):\n    pass\n"
    )
    jobs = (
        "from ctl import *\n\n"
        "def soils_rq(wd):\n    Ctl().build(wd)\n\n"
        "def hidden_rq(wd):\n    Hidden().build(wd)\n"
    )
    routes = (
        "from flask import Blueprint\nfrom redisprep import RedisPrep, TaskEnum\n"
        "from jobs import *\nbp = Blueprint('b', __name__)\n\n"
        "@bp.route('/a', methods=['POST'])\ndef a(wd, q):\n"
        "    RedisPrep.getInstance(wd).remove_timestamp(TaskEnum.build_soils)\n"
        "    q.enqueue(soils_rq, wd)\n\n"
        "@bp.route('/b', methods=['POST'])\ndef b(wd, q):\n"
        "    RedisPrep.getInstance(wd).remove_timestamp(TaskEnum.build_soils)\n"
        "    q.enqueue(hidden_rq, wd)\n"
    )
    project = Project([("ctl.py", ctl), ("jobs.py", jobs), ("routes.py", routes)])
    got = {
        v.finding.function: v.verdict
        for v in analyse(project, scan_source(routes, "routes.py"), Rules.load())
    }
    assert got == {"a": "safe", "b": "unsafe"}
