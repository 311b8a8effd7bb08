"""``python -m redisprep migrate`` on a module shaped like wepppy's RQ api.py
(``tests/fixtures/wepppy_like_api.py``): check -> fix -> check clean, bytes
outside the removed calls unchanged, ``--only`` one endpoint at a time, and the
fixed module still imports and serves requests (Flask test client, private
Redis, real RQ queue) with the migrated behaviour."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, Optional

import pytest
import redis
from rq import Queue

from redisprep import RedisPrep, TaskEnum
from redisprep.migrate import MARKER, fix_source, scan_source
from support.migrate_cli import run_migrate
from support.redis_server import url_with_db

FIXTURE = Path(__file__).parent / "fixtures" / "wepppy_like_api.py"
ORIGINAL = FIXTURE.read_text(encoding="utf-8")

# (endpoint, the whole statement as it appears in the fixture, comment text once removed)
CALLS = [
    (
        "api_build_climate",
        "    prep.remove_timestamp(TaskEnum.build_climate)  # Manual invalidation\n",
        "prep.remove_timestamp(TaskEnum.build_climate)",
    ),
    (
        "api_build_climate",
        "    prep.remove_timestamp(rp_mod.TaskEnum.build_rusle)\n",
        "prep.remove_timestamp(rp_mod.TaskEnum.build_rusle)",
    ),
    (
        "api_run_wepp",
        "    prep.remove_timestamp(\n        TE.run_wepp_hillslopes\n    )\n",
        "prep.remove_timestamp(TE.run_wepp_hillslopes)",
    ),
    (
        "api_run_wepp",
        "    prep.remove_timestamp(TE.run_wepp_watershed)\n",
        "prep.remove_timestamp(TE.run_wepp_watershed)",
    ),
    (
        "api_abstract_watershed",
        "        prep.remove_timestamp(TE.abstract_watershed)\n",
        "prep.remove_timestamp(TE.abstract_watershed)",
    ),
    (
        "api_build_landuse",
        "        prep.remove_timestamp(TaskEnum.build_landuse)\n",
        "prep.remove_timestamp(TaskEnum.build_landuse)",
    ),
    (
        "api_build_landuse",
        "        prep.remove_timestamp(TaskEnum.build_treatments)\n",
        "prep.remove_timestamp(TaskEnum.build_treatments)",
    ),
    (
        "api_build_landuse",
        "    if prep[TE.build_rangeland_cover] is not None: "
        "prep.remove_timestamp(TE.build_rangeland_cover)\n",
        "prep.remove_timestamp(TE.build_rangeland_cover)",
    ),
    (
        "api_build_soils",
        "    wd = get_wd(runid); RP.getInstance(wd).remove_timestamp('build_soils')\n",
        "RP.getInstance(wd).remove_timestamp('build_soils')",
    ),
]
KEPT = ("api_delete_climate", "    prep.remove_timestamp(TaskEnum.build_climate)\n")
# This module's jobs are stubs, so nothing here can be verified against the job side
# (tests/test_migrate_verify.py does that): these tests edit with `--force --only`.
FORCE_ALL = ("--force", "--only", *sorted({ep for ep, _, _ in CALLS}))


def span(stmt: str, text: str = ORIGINAL) -> tuple[int, int]:
    """1-based first and last line of ``stmt``, which occurs exactly once in ``text``."""
    assert text.count(stmt) == 1, stmt
    start = text[: text.index(stmt)].count("\n") + 1
    return start, start + stmt.count("\n") - 1


def migrate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_migrate(*args, cwd=cwd, timeout=60)


def changed_lines(old: str, new: str, spans: list[tuple[int, int]]) -> list[str]:
    """Assert that ``new`` is ``old`` with each span replaced by exactly one line,
    every other line byte-identical; return the replacement lines."""
    old_l, new_l = old.splitlines(keepends=True), new.splitlines(keepends=True)
    assert len(new_l) == len(old_l) - sum(e - s for s, e in spans)
    out: list[str] = []
    oi = ni = 0
    for s, e in sorted(spans):
        while oi < s - 1:
            assert new_l[ni] == old_l[oi], (ni, new_l[ni], old_l[oi])
            oi, ni = oi + 1, ni + 1
        out.append(new_l[ni])
        ni, oi = ni + 1, e
    assert new_l[ni:] == old_l[oi:]
    return out


@pytest.fixture
def api(tmp_path: Path) -> Path:
    target = tmp_path / "api.py"
    shutil.copyfile(FIXTURE, target)
    return target


@pytest.mark.no_redis
def test_check_lists_every_call_with_file_and_line(api: Path) -> None:
    p = migrate("api.py", "--check", cwd=api.parent)
    assert p.returncode == 1
    lines = p.stdout.splitlines()
    assert len(lines) == len(CALLS) + 1
    for line, (endpoint, stmt, call) in zip(lines, CALLS):
        start, _ = span(stmt)
        assert line.startswith(f"api.py:{start}: {endpoint} (POST /runs/<string:runid>/<config>/")
        assert line.endswith(f"): {call}"), line
    endpoint, stmt = KEPT
    assert lines[-1].startswith(f"api.py:{span(stmt)[0]}: {endpoint} (POST ")
    assert lines[-1].endswith("  [kept: # redisprep: keep]")
    # The unrelated History.remove_timestamp() and the docstring mention are not reported.
    assert "history" not in p.stdout.lower()
    assert "9 unmigrated call(s) in 5 function(s)" in p.stderr
    # Listing without --check reports the same and succeeds.
    p2 = migrate("api.py", cwd=api.parent)
    assert p2.returncode == 0
    assert p2.stdout == p.stdout
    assert api.read_text(encoding="utf-8") == ORIGINAL


@pytest.mark.no_redis
def test_fix_round_trip_keeps_every_other_byte(api: Path) -> None:
    p = migrate("api.py", "--fix", cwd=api.parent)
    assert p.returncode == 2  # unverified: nothing is removed without --workers or --force
    assert "cannot verify without --workers: nothing removed" in p.stderr
    assert api.read_text(encoding="utf-8") == ORIGINAL
    p = migrate("api.py", "--fix", *FORCE_ALL, cwd=api.parent)
    assert p.returncode == 0, p.stderr
    assert len([ln for ln in p.stdout.splitlines() if ln.startswith("fixed api.py:")]) == len(CALLS)
    new = api.read_text(encoding="utf-8")
    compile(new, str(api), "exec")
    replaced = changed_lines(ORIGINAL, new, [span(stmt) for _, stmt, _ in CALLS])
    for line, (_, stmt, call) in zip(replaced, CALLS):
        assert line.endswith(f"# {call}  {MARKER}\n"), line
        assert line.startswith(stmt[: len(stmt) - len(stmt.lstrip())])
    by_call = dict(zip((c for _, _, c in CALLS), replaced))
    # The task document's target state, exactly.
    assert by_call["prep.remove_timestamp(TaskEnum.build_climate)"] == (
        "    # prep.remove_timestamp(TaskEnum.build_climate)"
        "  # Removed - automatic invalidation now\n"
    )
    # Only statement of a `with` block -> pass; two calls emptying an `if` block -> one pass.
    assert by_call["prep.remove_timestamp(TE.abstract_watershed)"].startswith("        pass  # ")
    assert by_call["prep.remove_timestamp(TaskEnum.build_landuse)"].startswith("        pass  # ")
    assert by_call["prep.remove_timestamp(TaskEnum.build_treatments)"].startswith("        # ")
    # Sharing a line with other code: the statement becomes `pass`, the rest stays.
    assert by_call["prep.remove_timestamp(TE.build_rangeland_cover)"].startswith(
        "    if prep[TE.build_rangeland_cover] is not None: pass  # "
    )
    assert by_call["RP.getInstance(wd).remove_timestamp('build_soils')"].startswith(
        "    wd = get_wd(runid); pass  # "
    )
    # check is now clean (the kept endpoint is reported, not counted).
    p = migrate("api.py", "--check", cwd=api.parent)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.splitlines() == [
        ln for ln in p.stdout.splitlines() if ln.endswith("[kept: # redisprep: keep]")
    ]
    assert len(p.stdout.splitlines()) == 1
    # A second --fix changes nothing.
    p = migrate("api.py", "--fix", *FORCE_ALL, cwd=api.parent)
    assert p.returncode == 0
    assert "removed 0 call(s)" in p.stderr
    assert api.read_text(encoding="utf-8") == new


@pytest.mark.no_redis
def test_only_migrates_one_endpoint_at_a_time(api: Path) -> None:
    text = ORIGINAL
    done: set[str] = set()
    for batch in (["api_run_wepp"], ["api_build_landuse", "api_abstract_watershed"]):
        p = migrate("api.py", "--fix", "--force", "--only", *batch, cwd=api.parent)
        assert p.returncode == 0, p.stderr
        new = api.read_text(encoding="utf-8")
        spans = [span(stmt, text) for ep, stmt, _ in CALLS if ep in batch]
        changed_lines(text, new, spans)
        compile(new, str(api), "exec")
        done.update(batch)
        text = new
        check = migrate("api.py", "--check", cwd=api.parent)
        assert check.returncode == 1
        listed = {ln.split(": ")[1].split(" ")[0] for ln in check.stdout.splitlines()}
        assert listed == {ep for ep, _, _ in CALLS if ep not in done} | {KEPT[0]}
        assert migrate("api.py", "--check", "--only", *sorted(done), cwd=api.parent).returncode == 0
    p = migrate("api.py", "--fix", "--only", "api_does_not_exist", cwd=api.parent)
    assert p.returncode == 2
    assert "no function named api_does_not_exist" in p.stderr
    assert api.read_text(encoding="utf-8") == text


@pytest.mark.no_redis
def test_diff_previews_without_writing(api: Path) -> None:
    p = migrate("api.py", "--diff", "--force", "--only", "api_build_climate", cwd=api.parent)
    assert p.returncode == 0
    assert api.read_text(encoding="utf-8") == ORIGINAL
    assert p.stdout.startswith("--- api.py\n+++ api.py (migrated)\n")
    assert f"+    # prep.remove_timestamp(TaskEnum.build_climate)  {MARKER}\n" in p.stdout
    assert "-    prep.remove_timestamp(TaskEnum.build_climate)  # Manual invalidation\n" in p.stdout
    assert p.stdout.count("\n-    prep.remove_timestamp") == 2


# ----------------------------------------------------- the fixed module still runs

ENDPOINTS: dict[str, tuple[str, set[TaskEnum], bool]] = {
    # url suffix -> (job function, tasks the UNMIGRATED endpoint clears, enqueues a job)
    "rq/api/build_climate": (
        "build_climate_rq",
        {TaskEnum.build_climate, TaskEnum.build_rusle},
        True,
    ),
    "rq/api/run_wepp": (
        "run_wepp_rq",
        {TaskEnum.run_wepp_hillslopes, TaskEnum.run_wepp_watershed},
        True,
    ),
    "rq/api/abstract_watershed": ("abstract_watershed_rq", {TaskEnum.abstract_watershed}, True),
    "rq/api/build_landuse": (
        "build_landuse_rq",
        {TaskEnum.build_landuse, TaskEnum.build_treatments, TaskEnum.build_rangeland_cover},
        True,
    ),
    "rq/api/build_soils": ("build_soils_rq", {TaskEnum.build_soils}, True),
    "tasks/delete_climate": ("", {TaskEnum.build_climate}, False),
}


def load_module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def rq_conn(redis_info: Any) -> Iterator[redis.Redis[bytes]]:
    conn: redis.Redis[bytes] = redis.Redis.from_url(url_with_db(redis_info.url, 9))
    yield conn
    conn.close()


@pytest.mark.parametrize("state", ["original", "migrated"])
def test_module_runs_before_and_after_migration(
    api: Path, tmp_path: Path, redis_info: Any, rq_conn: redis.Redis[bytes], state: str
) -> None:
    from flask import Flask

    if state == "migrated":
        assert migrate("api.py", "--fix", *FORCE_ALL, cwd=api.parent).returncode == 0
    module = load_module(api, f"wepppy_like_api_{state}")
    runs = tmp_path / "runs"
    (runs / "run-1").mkdir(parents=True)
    app = Flask(f"test_{state}")
    app.config.update(
        RUNS_ROOT=str(runs), RQ_REDIS_URL=url_with_db(redis_info.url, 9), RQ_QUEUE="migrate-test"
    )
    app.register_blueprint(module.rq_api_bp)
    client = app.test_client()
    prep = RedisPrep.getInstance(str(runs / "run-1"))
    queue = Queue("migrate-test", connection=rq_conn)
    for suffix, (job_fn, cleared, enqueues) in ENDPOINTS.items():
        for task in TaskEnum:
            prep[task] = 1000
        resp = client.post(f"/runs/run-1/cfg/{suffix}")
        assert resp.status_code == 200, resp.get_data(as_text=True)
        gone = {task for task in TaskEnum if prep[task] is None}
        kept_endpoint = suffix == "tasks/delete_climate"
        if state == "original" or kept_endpoint:
            assert gone == cleared, suffix
        else:
            assert gone == set(), suffix  # the worker's timestamp() invalidates at completion
        if enqueues:
            job_id = resp.get_json()["job_id"]
            assert prep.get_rq_job_id(job_fn) == job_id
            assert job_id in queue.job_ids
    resp = client.post("/runs/run-1/cfg/history/prune")
    assert resp.get_json() == {"stamps": {"b": 2}}
    assert len(queue.job_ids) == sum(1 for *_, e in ENDPOINTS.values() if e)


# ------------------------------------------------------------------- edge cases

FASTAPI = """\
from fastapi import APIRouter
from wepppy.nodb.redis_prep import RedisPrep, TaskEnum

router = APIRouter()


@router.post("/runs/{runid}/{config}/rq-engine/api/build_climate")
async def build_climate(runid: str, config: str):
    prep = RedisPrep.getInstance(get_wd(runid))
    prep.remove_timestamp(TaskEnum.build_climate)
    prep.remove_timestamp(TaskEnum.run_geneva)

    def nested():
        prep.remove_timestamp(TaskEnum.build_rusle)

    nested()
    return JSONResponse({"job_id": "x"})


class Jobs:
    def reset(self, prep: RedisPrep):
        prep.remove_timestamp("build_soils")


def helper(wd):
    RedisPrep.getInstance(wd).remove_timestamp(TaskEnum.build_landuse)
"""


@pytest.mark.no_redis
def test_fastapi_shape_nested_functions_and_methods() -> None:
    found = scan_source(FASTAPI, "engine.py")
    assert [(f.function, f.task, f.line) for f in found] == [
        ("build_climate", "build_climate", 10),
        ("build_climate", "run_geneva", 11),
        ("build_climate", "build_rusle", 14),
        ("Jobs.reset", "build_soils", 22),
        ("helper", "build_landuse", 26),
    ]
    assert found[0].route == "POST /runs/{runid}/{config}/rq-engine/api/build_climate"
    assert found[3].route is None
    new, fixed = fix_source(FASTAPI, "engine.py", only=["build_climate"])
    assert len(fixed) == 3
    compile(new, "engine.py", "exec")
    assert "        pass  # prep.remove_timestamp(TaskEnum.build_rusle)" in new
    assert [f.function for f in scan_source(new)] == ["Jobs.reset", "helper"]
    _, fixed = fix_source(new, only=["reset"])  # a method, by its bare name
    assert [f.function for f in fixed] == ["Jobs.reset"]
    new, fixed = fix_source(new)
    compile(new, "engine.py", "exec")
    assert "    def reset(self, prep: RedisPrep):\n        pass  # prep.remove_timestamp(" in new
    assert "def helper(wd):\n    pass  # RedisPrep.getInstance(wd).remove_timestamp(" in new
    assert scan_source(new) == []


@pytest.mark.no_redis
def test_crlf_bom_and_non_ascii_columns(tmp_path: Path) -> None:
    src = (
        "from redisprep import TaskEnum as TE\r\n"
        "def f(prep):\r\n"
        '    label = "☁️ clïmate"; prep.remove_timestamp(TE.build_climate)\r\n'
        "    return label\r\n"
    )
    path = tmp_path / "crlf.py"
    path.write_bytes(b"\xef\xbb\xbf" + src.encode("utf-8"))
    p = migrate("crlf.py", "--fix", "--force", "--only", "f", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    assert data.count(b"\r\n") == data.count(b"\n") == 4
    text = data[3:].decode("utf-8")
    assert text.splitlines(keepends=True)[2] == (
        f'    label = "☁️ clïmate"; pass  # prep.remove_timestamp(TE.build_climate)  {MARKER}\r\n'
    )
    compile(text, "crlf.py", "exec")


@pytest.mark.no_redis
def test_calls_that_need_a_human_and_keep_pragmas(tmp_path: Path) -> None:
    src = """\
from redisprep import RedisPrep, TaskEnum


def a(prep: RedisPrep):
    ok = prep.remove_timestamp(TaskEnum.build_climate) or True
    return ok


def b(prep):
    # redisprep: keep - this endpoint really resets the step
    prep.remove_timestamp(TaskEnum.build_soils)
    prep.remove_timestamp(TaskEnum.build_landuse)
"""
    (tmp_path / "m.py").write_text(src, encoding="utf-8")
    p = migrate("m.py", "--fix", "--check", "--force", "--only", "a,b", cwd=tmp_path)
    assert p.returncode == 1  # the call inside an expression remains
    assert "m.py:5: a: prep.remove_timestamp(TaskEnum.build_climate)  [edit by hand" in p.stdout
    assert "m.py:11: b: prep.remove_timestamp(TaskEnum.build_soils)  [kept" in p.stdout
    new = (tmp_path / "m.py").read_text(encoding="utf-8")
    assert f"    # prep.remove_timestamp(TaskEnum.build_landuse)  {MARKER}\n" in new
    assert "    prep.remove_timestamp(TaskEnum.build_soils)\n" in new
    assert "1 unmigrated call(s) in 1 function(s)" in p.stderr


@pytest.mark.no_redis
def test_bad_input_is_a_clean_error(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("def f(:\n    pass\n", encoding="utf-8")
    p = migrate("broken.py", "--check", cwd=tmp_path)
    assert p.returncode == 2
    assert p.stderr.startswith("redisprep migrate: error: broken.py:1: cannot parse")
    p = migrate("missing.py", cwd=tmp_path)
    assert p.returncode == 2
    assert "missing.py: no such file or folder" in p.stderr


@pytest.mark.no_redis
def test_folders_are_walked(tmp_path: Path) -> None:
    call = (
        "from redisprep import TaskEnum\n\ndef f(p):\n    p.remove_timestamp(TaskEnum.set_outlet)\n"
    )
    for rel in ("a.py", "sub/b.py", ".venv/c.py", "sub/notes.txt"):
        target = tmp_path / "proj" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(call, encoding="utf-8")
    p = migrate("proj", "proj/a.py", "--check", cwd=tmp_path)
    assert p.returncode == 1
    files = [ln.split(":")[0] for ln in p.stdout.splitlines()]
    assert files == [os.path.join("proj", "a.py"), os.path.join("proj", "sub", "b.py")]


@pytest.mark.no_redis
def test_shipped_demo_app_has_its_deliberately_unmigrated_endpoint() -> None:
    import redisprep._demo.app as demo_app

    source_path: Optional[str] = demo_app.__file__
    assert source_path is not None
    found = scan_source(Path(source_path).read_text(encoding="utf-8"), source_path)
    assert [(f.function, f.task) for f in found] == [
        ("api_build_landuse", "build_landuse"),
        ("api_build_soils", "build_soils"),  # must stay: its job stamps the wrong task
    ]
