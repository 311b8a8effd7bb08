"""``python -m redisprep`` as a user runs it: a real subprocess, the private
Redis through ``REDIS_URL``, real rules files and run folders. Exit codes:
0 ok, 1 checked and found problems, 2 bad input / environment; never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

import pytest
import redis

import redisprep
from redisprep import RedisPrep, Rules, TaskEnum
from support.cli import run_cli
from support.redis_server import free_port


def default_rules_doc() -> dict[str, Any]:
    with open(redisprep.rules_path(), encoding="utf-8") as f:
        doc: dict[str, Any] = json.load(f)
    return doc


# ----------------------------------------------------------------------- basics


def test_version_and_usage_errors() -> None:
    p = run_cli("--version")
    assert p.returncode == 0
    assert p.stdout.strip() == f"redisprep {redisprep.__version__}"
    for argv in ([], ["rules"], ["rules", "nope"], ["rules", "graph", "--format", "png"]):
        p = run_cli(*argv)
        assert p.returncode == 2, (argv, p.stdout, p.stderr)
        assert "usage:" in p.stderr


def test_cli_import_keeps_optional_deps_lazy() -> None:
    code = "import sys, redisprep.cli; print(sorted({'flask', 'rq'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------ rules check


def test_rules_check_default_file() -> None:
    p = run_cli("rules", "check")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert len(lines) == 1
    doc = default_rules_doc()
    assert lines[0].startswith("OK ")
    assert f"{len(doc['tasks'])} tasks" in lines[0]
    assert f"{len(doc['controllers'])} controllers" in lines[0]
    assert f"{len(doc['checks'])} checks" in lines[0]
    # Every TaskEnum value is covered, so there is no "not covered" note.
    assert p.stderr == ""
    # The packaged file by explicit path gives the same verdict.
    assert run_cli("rules", "check", redisprep.rules_path()).returncode == 0


def _rules_without_rusle(path: Path, **tasks: dict[str, Any]) -> Path:
    """The default rules without ``build_rusle`` (entry, cascades and the checks
    reading it), entries ``tasks`` replaced, written to ``path``."""
    doc = default_rules_doc()
    doc["tasks"].update(tasks)
    del doc["tasks"]["build_rusle"]
    del doc["checks"]["rusle"]
    doc["checks"]["wepp"] = doc["checks"]["wepp"]["any"][0]  # without the gridded alternative
    for task in doc["tasks"].values():
        if "build_rusle" in task.get("cascades", []):
            task["cascades"].remove("build_rusle")
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def _broken_rules(tmp_path: Path) -> tuple[Path, list[str]]:
    """The default rules with four mistakes; returns the file and the expected JSON paths."""
    doc = default_rules_doc()
    climate = doc["tasks"]["build_climate"]
    climate["invalidates"].append("climat")
    typo_at = len(climate["invalidates"]) - 1
    doc["colour"] = "blue"
    doc["tasks"]["build_rap_ts"].setdefault("cascades", []).append("build_climate")
    doc["controllers"]["wepp"]["keys"] = ["{wd}/wepp.nodb", "{rundir}/wepp.nodb"]
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    expected = [
        f'tasks.build_climate.invalidates[{typo_at}]: unknown controller "climat"',
        'colour: unknown key "colour"',
        "controllers.wepp.keys[1]: unknown placeholder {rundir}",
        "tasks: cascade cycle: ",
    ]
    return path, expected


def test_rules_check_broken_file_lists_every_error(tmp_path: Path) -> None:
    path, expected = _broken_rules(tmp_path)
    p = run_cli("rules", "check", str(path))
    assert p.returncode == 1
    assert p.stdout == ""
    err = p.stderr.splitlines()
    assert err[0] == f"{path}: {len(expected)} error(s)"
    for want in expected:
        assert any(line.strip().startswith(want) for line in err[1:]), (want, p.stderr)
    cycle = next(line for line in err if "cascade cycle" in line)
    assert "build_climate" in cycle and "build_rap_ts" in cycle
    # REDISPREP_RULES is the default when no path is given.
    p2 = run_cli("rules", "check", env={"REDISPREP_RULES": str(path)})
    assert p2.returncode == 1
    assert p2.stderr == p.stderr


@pytest.mark.parametrize(
    ("content", "want"),
    [
        ('{"version": 1, "controllers": {', "(top level): not valid JSON"),
        ("[1, 2]", "(top level): expected a JSON object"),
        ('{"version": 7, "controllers": {}, "tasks": {}}', "version: unsupported version 7"),
        ('{"version": 1, "controllers": [], "tasks": {}}', "controllers: "),
    ],
)
def test_rules_check_malformed(tmp_path: Path, content: str, want: str) -> None:
    path = tmp_path / "rules.json"
    path.write_text(content, encoding="utf-8")
    p = run_cli("rules", "check", str(path))
    assert p.returncode == 1
    assert any(line.strip().startswith(want) for line in p.stderr.splitlines()), p.stderr


def test_rules_check_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    p = run_cli("rules", "check", str(tmp_path / "nope.json"))
    assert p.returncode == 2
    assert (
        p.stderr.strip() == f"redisprep rules: error: {tmp_path / 'nope.json'}: no such rules file"
    )


def test_rules_check_notes_uncovered_tasks(tmp_path: Path) -> None:
    path = _rules_without_rusle(tmp_path / "partial.json")
    p = run_cli("rules", "check", str(path))
    assert p.returncode == 0, p.stderr
    assert "1 TaskEnum value(s) have no entry" in p.stderr
    assert p.stderr.rstrip().endswith("build_rusle")


# ---------------------------------------------------------------- rules explain


def test_rules_explain_renders_keys_and_cascades(run_dir: Path) -> None:
    rules = Rules.load()
    p = run_cli("rules", "explain", "build_climate", "--wd", f"{run_dir}/")
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert out.splitlines()[0].startswith("build_climate (☁️ Build Climate)")
    for key in rules.keys_for("build_climate", str(run_dir)):
        assert f"key {key}\n" in out
    assert "{wd}" not in out
    # The cascade path is spelled out for an indirect controller.
    wepppost = next(line for line in out.splitlines() if line.strip().startswith("wepppost"))
    assert wepppost.split(None, 1)[1] == "via build_climate -> run_wepp_hillslopes -> " + (
        "run_wepp_watershed"
    )
    climate = next(line for line in out.splitlines() if line.strip().startswith("climate "))
    assert climate.split(None, 1)[1] == "directly"


@pytest.mark.parametrize("task", ["abstract_watershed", "run_wepp_watershed", "build_climate"])
def test_rules_explain_json_matches_the_engine(task: str, run_dir: Path) -> None:
    p = run_cli("rules", "explain", task, "--wd", str(run_dir), "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    rules = Rules.load()
    assert doc["controllers"] == rules.explain(task, str(run_dir))
    assert doc["cascades"] == rules.cascades_of(task)
    assert doc["db"] == 13
    keys = [k for c in doc["controllers"] for k in c["keys"]]
    assert sorted(keys) == sorted(rules.keys_for(task, str(run_dir)))


def test_rules_explain_member_names_and_unknown_tasks() -> None:
    p = run_cli("rules", "explain", "fetch_rap_ts")  # member name -> value build_rap_ts
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("build_rap_ts (🐮 Build RAP TS)")
    assert "key {wd}/rap_ts.nodb" in p.stdout
    p = run_cli("rules", "explain", "build_climat")
    assert p.returncode == 2
    assert "unknown task 'build_climat'" in p.stderr
    assert "did you mean build_climate" in p.stderr
    assert p.stdout == ""


def test_rules_explain_uses_the_given_rules_file(tmp_path: Path) -> None:
    path = _rules_without_rusle(tmp_path / "small.json", build_climate={"invalidates": ["climate"]})
    p = run_cli("rules", "explain", "build_climate", "--rules", str(path), "--json")
    assert p.returncode == 0, p.stderr
    assert [c["controller"] for c in json.loads(p.stdout)["controllers"]] == ["climate"]
    assert json.loads(p.stdout)["rules"] == str(path)
    # A TaskEnum task without an entry is a valid question: it invalidates nothing.
    p = run_cli("rules", "explain", "build_rusle", "--rules", str(path))
    assert p.returncode == 0, p.stderr
    assert p.stdout == f"build_rusle (🔱 Build RUSLE): no entry in {path}; it invalidates nothing\n"


# ------------------------------------------------------------------ rules graph


def test_rules_graph_formats() -> None:
    rules = Rules.load()
    text = run_cli("rules", "graph")
    assert text.returncode == 0, text.stderr
    blocks = text.stdout.split("\n")
    for task in rules.tasks:
        assert any(line.startswith(f"{task}  (") for line in blocks), task
    i = blocks.index("build_climate  (☁️ Build Climate)")
    assert blocks[i + 1] == "  invalidates: climate"
    assert blocks[i + 2] == "  cascades:    " + ", ".join(rules.cascades_of("build_climate"))
    assert (
        blocks[i + 3]
        == f"  closure:     {len(rules.controllers_for('build_climate'))} controller(s)"
    )
    dot = run_cli("rules", "graph", "--format", "dot")
    assert dot.returncode == 0
    assert dot.stdout == rules.graph("dot").rstrip("\n") + "\n"
    assert dot.stdout.startswith("digraph")
    mermaid = run_cli("rules", "graph", "--format", "mermaid")
    assert mermaid.stdout == rules.graph("mermaid").rstrip("\n") + "\n"


# -------------------------------------------------------------------- preflight


def _stamp(prep: RedisPrep, values: dict[TaskEnum, int]) -> None:
    for task, value in values.items():
        prep[task] = value  # __setitem__: records without invalidating


def _check_line(out: str, check: str) -> str:
    lines = [ln for ln in out.splitlines() if ln[4:].split(" ", 1)[0] == check]
    assert len(lines) == 1, (check, out)
    return lines[0]


def test_preflight_prints_checklist_with_reasons(run_dir: Path, r0: redis.Redis[str]) -> None:
    prep = RedisPrep.getInstance(str(run_dir))
    _stamp(
        prep,
        {
            TaskEnum.build_channels: 50,
            TaskEnum.abstract_watershed: 100,
            TaskEnum.build_climate: 90,  # older than the watershed: climate is stale
            TaskEnum.build_landuse: 200,
            TaskEnum.build_soils: 210,
            TaskEnum.run_wepp_watershed: 300,
        },
    )
    prep.has_sbs = True
    r0.hset(prep.run_id, "locked:climate.nodb", "true")
    before = r0.hgetall(prep.run_id)
    dump_before = Path(prep.dump_filepath).read_bytes()

    p = run_cli("preflight", str(run_dir))
    assert p.returncode == 0, p.stderr
    out = p.stdout
    expected = prep.preflight(explain=True)

    assert _check_line(out, "channels").startswith("  ✓ channels")
    assert "🌊 Build Channels" in _check_line(out, "channels")
    assert _check_line(out, "wepp").startswith("  ✓ wepp")
    assert "⛰️ Run WEPP Watershed" in _check_line(out, "wepp")
    assert "🔥 Initialize SBS Map" in _check_line(out, "sbs_map")
    climate = _check_line(out, "climate")
    assert climate.startswith("  ✗ climate") and "☁️ Build Climate" in climate
    assert "      climate: build_climate (90) is not newer than abstract_watershed (100)\n" in out
    for check, ok in expected["checklist"].items():
        assert _check_line(out, check).startswith(f"  {'✓' if ok else '✗'} {check}")
        for reason in expected["explain"].get(check, []) if not ok else []:
            assert f"      {check}: {reason}\n" in out
    passed = sum(expected["checklist"].values())
    assert out.rstrip().endswith(f"{passed}/{len(expected['checklist'])} checks pass")
    assert "locks: climate.nodb locked" in out
    assert "last modified: " in out and "(300)" in out
    # Group names used in the reasons are spelled out (observed fails against @W).
    assert "observed: run_observed (missing) is not newer than @W (300)" in out
    assert '  @W = {"first_present": ["run_wepp_watershed", "run_wepp"]}' in out
    # Read-only: the hash and the dump are untouched.
    assert r0.hgetall(prep.run_id) == before
    assert Path(prep.dump_filepath).read_bytes() == dump_before


def _label(check: str, task: Optional[str]) -> str:
    by_value = {str(m): m for m in TaskEnum}
    member = by_value.get(task or "")
    if member is None:  # a check on no task: the member named like it (sbs_map)
        member = next((m for m in TaskEnum if m.name.endswith("_" + check)), None)
    return f"{member.emoji()} {member.label()}" if member else ""


def test_preflight_text_is_the_rust_evaluators_explanation(
    run_dir: Path, r0: redis.Redis[str]
) -> None:
    """Every line between the header and the totals renders ``Rules.explain_checks``
    on the run's hash: the check, its task, the evaluator's reasons, its groups."""
    prep = RedisPrep.getInstance(str(run_dir))
    _stamp(
        prep,
        {
            TaskEnum.build_channels: 5,
            TaskEnum.find_outlet: 4,
            TaskEnum.abstract_watershed: 10,
            TaskEnum.build_soils: 12,
            TaskEnum.run_wepp_watershed: 11,
            TaskEnum.dss_export: 3,
        },
    )
    report = Rules.load().explain_checks(r0.hgetall(prep.run_id))
    width = max(len(c) for c in report["checklist"])
    want = []
    for check, ok in report["checklist"].items():
        want.append(
            f"  {'✓' if ok else '✗'} {check:<{width}}  {_label(check, report['tasks'][check])}"
        )
        want.extend(f"      {check}: {r}" for r in report["explain"].get(check, []))
    assert report["groups"]  # @W, @outlet_time, @dss_inputs are named by the reasons
    want.append("")
    want.extend(f"  @{g} = {json.dumps(d)}" for g, d in sorted(report["groups"].items()))
    p = run_cli("preflight", str(run_dir))
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    body = lines[lines.index("") + 1 : lines.index("") + 1 + len(want)]
    assert body == want
    passed = sum(report["checklist"].values())
    assert lines[-1] == f"{passed}/{len(report['checklist'])} checks pass"
    doc = json.loads(run_cli("preflight", str(run_dir), "--json").stdout)
    assert {k: doc[k] for k in ("checklist", "explain", "last_modified", "lock_statuses")} == {
        k: report[k] for k in ("checklist", "explain", "last_modified", "lock_statuses")
    }


def test_preflight_json(run_dir: Path) -> None:
    prep = RedisPrep.getInstance(str(run_dir))
    _stamp(prep, {TaskEnum.abstract_watershed: 10, TaskEnum.build_climate: 11})
    p = run_cli("preflight", str(run_dir), "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    expected = prep.preflight(explain=True)
    for key in ("checklist", "lock_statuses", "last_modified", "explain"):
        assert doc[key] == expected[key]
    assert doc["checklist"]["climate"] is True
    assert doc["run_id"] == prep.run_id
    # `preflight .` from inside the run folder reads the same run.
    here = run_cli("preflight", ".", "--json", cwd=run_dir)
    assert here.returncode == 0, here.stderr
    assert json.loads(here.stdout) == doc


def test_preflight_never_writes(tmp_path: Path, r0: redis.Redis[str]) -> None:
    wd = tmp_path / "fresh-run"
    wd.mkdir()
    p = run_cli("preflight", str(wd))
    assert p.returncode == 0, p.stderr
    assert "no prep hash for this run in Redis" in p.stdout
    assert "0/21 checks pass" in p.stdout
    assert r0.exists("fresh-run") == 0
    assert list(wd.iterdir()) == []


def test_preflight_reads_the_dump_when_redis_lost_the_hash(
    run_dir: Path, r0: redis.Redis[str]
) -> None:
    prep = RedisPrep.getInstance(str(run_dir))
    _stamp(prep, {TaskEnum.abstract_watershed: 10, TaskEnum.build_climate: 11})
    expected = prep.preflight(explain=True)
    r0.flushdb()  # Redis restarted empty; the dump is still on disk
    p = run_cli("preflight", str(run_dir), "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["checklist"] == expected["checklist"]
    assert doc["source"].startswith(prep.dump_filepath)
    assert r0.exists(prep.run_id) == 0  # still not loaded: the command only reads


def test_preflight_without_redis_is_a_clean_error(run_dir: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    p = run_cli(
        "preflight",
        str(run_dir),
        env={"REDIS_URL": url, "REDISPREP_CONNECT_TIMEOUT": "2"},
    )
    assert p.returncode == 2
    assert p.stderr.startswith("redisprep preflight: error: ")
    assert "127.0.0.1" in p.stderr
    assert p.stdout == ""


# ---------------------------------------------------------------- delegation


def test_migrate_layout_is_delegated(run_dir: Path, redis_info: Any) -> None:
    p = run_cli("migrate-layout", "--help")
    assert p.returncode == 0
    assert "--from" in p.stdout and "--dry-run" in p.stdout
    RedisPrep.getInstance(str(run_dir)).timestamp(TaskEnum.build_climate)
    p = run_cli("migrate-layout", "--from", redis_info.url, "--to", redis_info.url, "--dry-run")
    assert p.returncode == 0, p.stderr
    assert f"would copy '{run_dir.name}'" in p.stdout


def test_demo_is_delegated() -> None:
    p = run_cli("demo", "--help")
    assert p.returncode == 0, p.stderr
    assert "--once" in p.stdout
