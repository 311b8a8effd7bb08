"""The rules engine from Python: the packaged default file (schema, coverage of
every TaskEnum value and every wepppy NoDb controller), load
precedence, every validation error with its JSON path (the checks section's are in
test_preflight.py), hot reload, cascade
closures (checked against an independent breadth-first search of the JSON)
and key rendering (values literal, glob-escaped in patterns)."""

from __future__ import annotations

import copy
import json
import logging
import os
from collections import deque
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import redisprep
from redisprep import RedisPrep, Rules, RulesError, TaskEnum

RULES_DIR = Path(redisprep.__file__).parent / "rules"
DEFAULT: dict[str, Any] = json.loads((RULES_DIR / "cache_invalidation_rules.json").read_text())
SCHEMA: dict[str, Any] = json.loads(
    (RULES_DIR / "cache_invalidation_rules.schema.json").read_text()
)

# The wepppy NoDb controllers, by their `.nodb` file stem.
SPEC_CONTROLLERS = [
    "ron",
    "topaz",
    "watershed",
    "landuse",
    "soils",
    "climate",
    "wepp",
    "wepppost",
    "disturbed",
    "baer",
    "ash",
    "rhem",
    "observed",
    "debris_flow",
    "omni",
    "rap_ts",
    "treatments",
    "rangeland_cover",
]

# A small valid file that the error tests mutate one thing at a time.
BASE: dict[str, Any] = {
    "version": 1,
    "db": 13,
    "controllers": {
        "climate": {"keys": ["{wd}/climate.nodb"]},
        "wepp": {"keys": ["{wd}/wepp.nodb"]},
        "watershed": {"keys": ["{wd}/watershed.nodb"]},
    },
    "tasks": {
        "abstract_watershed": {"invalidates": ["watershed"], "cascades": ["build_climate"]},
        "build_climate": {"invalidates": ["climate"], "cascades": ["run_wepp_watershed"]},
        "run_wepp_watershed": {"invalidates": ["wepp"]},
    },
    "groups": {"W": {"first_present": ["run_wepp_watershed"]}},
    "checks": {"wepp": {"newer": "@W", "than_all": ["build_climate"]}},
}


def base(**changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(BASE)
    doc.update(changes)
    return doc


def issues_of(doc: dict[str, Any] | str) -> list[tuple[str, str]]:
    text = doc if isinstance(doc, str) else json.dumps(doc)
    with pytest.raises(RulesError) as info:
        Rules.from_json(text, "t.json")
    err = info.value
    assert isinstance(err, redisprep.RedisPrepError) and isinstance(err, ValueError)
    assert err.issues, "RulesError without issues"
    # every issue is in the message, with its path, for a person
    for path, message in err.issues:
        assert message in str(err)
        if path:
            assert f"{path}: {message}" in str(err)
    return err.issues


def closure_bfs(doc: dict[str, Any], task: str) -> dict[str, list[str]]:
    """Independent model: controller -> shortest cascade path from `task`."""
    tasks = doc["tasks"]
    out: dict[str, list[str]] = {}
    seen = {task}
    queue: deque[list[str]] = deque([[task]])
    while queue:
        path = queue.popleft()
        body = tasks[path[-1]]
        for c in body["invalidates"]:
            out.setdefault(c, path)
        for nxt in body.get("cascades", []):
            if nxt not in seen:
                seen.add(nxt)
                queue.append([*path, nxt])
    return out


# -- the packaged default -------------------------------------------------------


@pytest.mark.no_redis
def test_default_file_validates_against_its_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.Draft202012Validator(SCHEMA).validate(DEFAULT)
    # the schema is not a rubber stamp: it rejects what the loader rejects by shape
    for bad in [base(version=2), base(extra=1), base(db=99), base(controllers=[])]:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, SCHEMA)


@pytest.mark.no_redis
def test_default_rules_cover_every_task_and_every_spec_controller() -> None:
    rules = Rules.load()
    assert rules.version == 1 and rules.db == 13
    assert rules.source.startswith("builtin:")
    assert set(rules.tasks) >= {str(t) for t in TaskEnum}
    for task in TaskEnum:
        # an explicit entry (possibly an empty list) for every member
        assert isinstance(DEFAULT["tasks"][str(task)]["invalidates"], list), task
    assert set(rules.controllers) >= set(SPEC_CONTROLLERS)
    for name in rules.controllers:
        assert DEFAULT["controllers"][name]["keys"] == [f"{{wd}}/{name}.nodb"], name
    # every controller is made stale by some task (nothing is dead data)
    reachable = {c for t in rules.tasks for c in rules.controllers_for(t)}
    assert reachable == set(rules.controllers)


@pytest.mark.no_redis
def test_default_dependency_knowledge() -> None:
    rules = Rules.load()
    wd = "/wc1/runs/ab/abc-def"
    assert rules.keys_for(TaskEnum.build_climate, wd)[0] == f"{wd}/climate.nodb"
    downstream = set(rules.controllers_for(TaskEnum.abstract_watershed))
    assert {"watershed", "landuse", "soils", "climate", "wepp", "wepppost"} <= downstream
    assert "ron" not in downstream  # the DEM is upstream of the watershed
    assert set(rules.controllers_for(TaskEnum.run_wepp_watershed)) >= {"wepp", "wepppost"}
    assert "climate" not in rules.controllers_for(TaskEnum.run_wepp_watershed)
    assert rules.controllers_for(TaskEnum.set_readonly) == []
    assert set(rules.controllers_for(TaskEnum.project_init)) == set(rules.controllers)
    # a task the application added later has no rules and invalidates nothing
    assert rules.controllers_for("run_tomorrow") == [] and rules.keys_for("run_tomorrow", wd) == []
    # run_geneva (wepppy, April 2026): its own controller, made stale by its inputs
    assert rules.keys_for(TaskEnum.run_geneva, wd) == [f"{wd}/geneva.nodb"]
    for task in ["build_landuse", "build_soils", "build_climate", "init_sbs_map"]:
        assert "geneva" in rules.controllers_for(task), task


@pytest.mark.no_redis
@pytest.mark.parametrize("task", sorted(DEFAULT["tasks"]))
def test_closure_matches_an_independent_search(task: str) -> None:
    rules = Rules.load()
    expected = closure_bfs(DEFAULT, task)
    assert set(rules.controllers_for(task)) == set(expected)
    assert len(rules.controllers_for(task)) == len(expected)  # no duplicates
    assert rules.cascades_of(task) == DEFAULT["tasks"][task].get("cascades", [])
    for plan in rules.explain(task):
        via = plan["via"]
        assert via[0] == task
        assert plan["controller"] in DEFAULT["tasks"][via[-1]]["invalidates"]
        for a, b in zip(via, via[1:]):
            assert b in DEFAULT["tasks"][a]["cascades"], via
        assert len(via) == len(expected[plan["controller"]])  # a shortest path
        assert plan["direct"] == (len(via) == 1)
        assert plan["keys"] == [f"{{wd}}/{plan['controller']}.nodb"]
        assert plan["db"] == 13


# -- load precedence ------------------------------------------------------------


def write_rules(path: Path, controller_key: str) -> Path:
    doc = base()
    doc["controllers"]["climate"]["keys"] = [controller_key]
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.no_redis
def test_load_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    explicit = write_rules(tmp_path / "explicit.json", "{wd}/explicit.nodb")
    env = write_rules(tmp_path / "env.json", "{wd}/env.nodb")
    monkeypatch.delenv("REDISPREP_RULES", raising=False)
    assert Rules.load().source.startswith("builtin:")
    monkeypatch.setenv("REDISPREP_RULES", str(env))
    assert Rules.load().source == str(env)
    assert Rules.load().keys_for("build_climate", "/r/x")[0] == "/r/x/env.nodb"
    assert Rules.load(explicit).keys_for("build_climate", "/r/x")[0] == "/r/x/explicit.nodb"
    assert Rules.load(str(explicit)).source == str(explicit)
    monkeypatch.setenv("REDISPREP_RULES", "  ")  # blank means unset
    assert Rules.load().source.startswith("builtin:")
    monkeypatch.setenv("REDISPREP_RULES", str(tmp_path / "missing.json"))
    with pytest.raises(RulesError) as info:
        Rules.load()
    assert "missing.json" in str(info.value) and "cannot read" in str(info.value)


@pytest.mark.no_redis
def test_runtime_rules_follow_the_same_precedence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    explicit = write_rules(tmp_path / "explicit.json", "{wd}/explicit.nodb")
    env = write_rules(tmp_path / "env.json", "{wd}/env.nodb")
    monkeypatch.setenv("REDISPREP_RULES", str(env))
    redisprep.set_rules_path(None)
    active = redisprep.active_rules()
    assert active is not None and active.source == str(env)
    redisprep.set_rules_path(explicit)
    active = redisprep.active_rules()
    assert active is not None and active.source == str(explicit)
    monkeypatch.delenv("REDISPREP_RULES")
    redisprep.set_rules_path(None)
    active = redisprep.active_rules()
    assert active is not None and active.source.startswith("builtin:")


# -- validation: every error kind, with its JSON path -----------------------------


@pytest.mark.no_redis
def test_valid_base_and_global_templates_load() -> None:
    assert Rules.from_json(json.dumps(BASE)).checks == ["wepp"]
    doc = base()
    doc["controllers"]["shared"] = {"keys": ["wepppy:config-cache"], "global": True}
    doc["controllers"]["by_id"] = {"keys": ["nodb:{run_id}:{controller}"]}
    rules = Rules.from_json(json.dumps(doc))
    assert set(rules.controllers) >= {"shared", "by_id"}


def mutate(path: str, value: Any) -> dict[str, Any]:
    """BASE with the value at a dotted path replaced (created if missing)."""
    doc = base()
    node = doc
    parts = path.split(".")
    for p in parts[:-1]:
        node = node[p]
    node[parts[-1]] = value
    return doc


ERROR_CASES: dict[str, tuple[dict[str, Any], str, str]] = {
    "unknown top-level key": (base(bogus=1), "bogus", 'unknown key "bogus"'),
    "unknown version": (
        base(version=2),
        "version",
        "unsupported version 2 (this redisprep understands version 1)",
    ),
    "version not an integer": (base(version="1"), "version", "expected an integer"),
    "db out of range": (base(db=16), "db", "expected an integer 0..=15"),
    "unknown controller": (
        mutate("tasks.build_climate.invalidates", ["climate", "climat"]),
        "tasks.build_climate.invalidates[1]",
        'unknown controller "climat"',
    ),
    "unknown placeholder": (
        mutate("controllers.climate.keys", ["{wdir}/climate.nodb"]),
        "controllers.climate.keys[0]",
        "unknown placeholder {wdir}",
    ),
    "unclosed brace": (
        mutate("controllers.climate.keys", ["{wd/climate.nodb"]),
        "controllers.climate.keys[0]",
        "unclosed '{'",
    ),
    "template without run": (
        mutate("controllers.climate.keys", ["{wd}/climate.nodb", "climate.nodb"]),
        "controllers.climate.keys[1]",
        "has neither {wd} nor {run_id}",
    ),
    "pattern without run": (
        mutate("controllers.climate.patterns", ["*.nodb"]),
        "controllers.climate.patterns[0]",
        "has neither {wd} nor {run_id}",
    ),
    "controller-only template": (
        mutate("controllers.climate.keys", ["{controller}"]),
        "controllers.climate.keys[0]",
        "has neither {wd} nor {run_id}",
    ),
    "duplicate key template": (
        mutate("controllers.climate.keys", ["{wd}/climate.nodb", "{wd}/climate.nodb"]),
        "controllers.climate.keys[1]",
        'duplicate entry "{wd}/climate.nodb"',
    ),
    "duplicate invalidates": (
        mutate("tasks.build_climate.invalidates", ["climate", "climate"]),
        "tasks.build_climate.invalidates[1]",
        'duplicate entry "climate"',
    ),
    "duplicate cascade": (
        mutate("tasks.build_climate.cascades", ["run_wepp_watershed", "run_wepp_watershed"]),
        "tasks.build_climate.cascades[1]",
        'duplicate entry "run_wepp_watershed"',
    ),
    "unknown cascade task": (
        mutate("tasks.build_climate.cascades", ["run_wep"]),
        "tasks.build_climate.cascades[0]",
        'unknown task "run_wep"',
    ),
    "self cascade": (
        mutate("tasks.build_climate.cascades", ["build_climate"]),
        "tasks.build_climate.cascades[0]",
        'task "build_climate" cascades to itself',
    ),
    "unknown task key": (
        mutate("tasks.build_climate.invalidate", ["climate"]),
        "tasks.build_climate.invalidate",
        'unknown key "invalidate"',
    ),
    "unknown controller key": (
        mutate("controllers.climate.key", "x"),
        "controllers.climate.key",
        'unknown key "key"',
    ),
    "invalidates missing": (
        mutate("tasks.run_wepp_watershed", {"cascades": []}),
        "tasks.run_wepp_watershed.invalidates",
        "missing",
    ),
    "wrong type in list": (
        mutate("tasks.build_climate.invalidates", ["climate", 3]),
        "tasks.build_climate.invalidates[1]",
        "expected a string, got a number",
    ),
    "global not a bool": (
        mutate("controllers.climate.global", "yes"),
        "controllers.climate.global",
        "expected a boolean",
    ),
}


@pytest.mark.no_redis
@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_each_error_kind_is_reported_with_its_path(case: str) -> None:
    doc, path, message = ERROR_CASES[case]
    got = issues_of(doc)
    assert any(p == path and message in m for p, m in got), got


@pytest.mark.no_redis
def test_cascade_cycle_is_named() -> None:
    doc = mutate("tasks.run_wepp_watershed.cascades", ["abstract_watershed"])
    got = issues_of(doc)
    assert len(got) == 1, got
    path, message = got[0]
    assert path == "tasks" and message.startswith("cascade cycle: ")
    chain = message.removeprefix("cascade cycle: ").split(" -> ")
    assert chain[0] == chain[-1] and len(chain) == 4
    assert set(chain) == {"abstract_watershed", "build_climate", "run_wepp_watershed"}
    for a, b in zip(chain, chain[1:]):  # each step is a real cascade edge
        assert b in doc["tasks"][a]["cascades"]


@pytest.mark.no_redis
def test_every_error_is_reported_at_once() -> None:
    doc = base(bogus=1, version=3)
    doc["controllers"]["climate"]["keys"] = ["{nope}/x", "static"]
    doc["tasks"]["build_climate"]["invalidates"] = ["climat", "climat"]
    doc["checks"]["x"] = {"maybe": 1}
    got = issues_of(doc)
    paths = [p for p, _ in got]
    for p in [
        "bogus",
        "version",
        "controllers.climate.keys[0]",
        "controllers.climate.keys[1]",
        "tasks.build_climate.invalidates[0]",
        "tasks.build_climate.invalidates[1]",
        "checks.x.maybe",
    ]:
        assert p in paths, (p, got)


@pytest.mark.no_redis
def test_odd_names_are_quoted_in_paths() -> None:
    doc = base()
    doc["tasks"]["build_climate"]["invalidates"] = ["climate", "no such"]
    doc["controllers"]["has space"] = {"keys": ["{wd}/x"]}
    got = issues_of(doc)
    assert ("tasks.build_climate.invalidates[1]", 'unknown controller "no such"') in got
    assert any(p == 'controllers["has space"]' for p, _ in got), got


@pytest.mark.no_redis
@pytest.mark.parametrize("text", ["", "{", "[]", "null", '{"version": 1}', "\x00"])
def test_malformed_text_is_a_rules_error(text: str) -> None:
    assert issues_of(text)


# -- hot reload -----------------------------------------------------------------


def climate_rules(path: Path, key: str, mtime: int) -> None:
    doc = base()
    doc["controllers"]["climate"]["keys"] = [key]
    path.write_text(json.dumps(doc))
    os.utime(path, (mtime, mtime))


def test_hot_reload_is_picked_up_by_the_next_timestamp(
    tmp_path: Path, run_dir: Path, r13: redis.Redis[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDISPREP_RULES_RELOAD_INTERVAL", "0")
    path = tmp_path / "rules.json"
    climate_rules(path, "{wd}/one.nodb", 1_700_000_000)
    redisprep.set_rules_path(path)
    prep = RedisPrep.getInstance(str(run_dir))
    one, two = f"{run_dir}/one.nodb", f"{run_dir}/two.nodb"
    r13.mset({one: "c", two: "c"})
    prep.timestamp(TaskEnum.build_climate)
    assert r13.exists(one) == 0 and r13.get(two) == "c"
    reloads = redisprep.stats()["rules_reloads"]
    climate_rules(path, "{wd}/two.nodb", 1_700_000_100)
    r13.set(one, "c")
    prep.timestamp(TaskEnum.build_climate)
    assert r13.exists(two) == 0 and r13.get(one) == "c"
    assert redisprep.stats()["rules_reloads"] == reloads + 1
    active = redisprep.active_rules()
    assert active is not None and active.keys_for("build_climate", "/r/x")[0] == "/r/x/two.nodb"


def test_reload_is_checked_at_most_once_per_interval(
    tmp_path: Path, run_dir: Path, r13: redis.Redis[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDISPREP_RULES_RELOAD_INTERVAL", "3600")
    path = tmp_path / "rules.json"
    climate_rules(path, "{wd}/one.nodb", 1_700_000_000)
    redisprep.set_rules_path(path)
    prep = RedisPrep.getInstance(str(run_dir))
    prep.timestamp(TaskEnum.build_climate)  # loads the rules, starts the interval
    climate_rules(path, "{wd}/two.nodb", 1_700_000_100)
    one, two = f"{run_dir}/one.nodb", f"{run_dir}/two.nodb"
    r13.mset({one: "c", two: "c"})
    prep.timestamp(TaskEnum.build_climate)
    assert r13.exists(one) == 0 and r13.get(two) == "c", "reloaded before the interval"
    redisprep.set_rules_path(path)  # an explicit (re)configuration reloads at once
    prep.timestamp(TaskEnum.build_climate)
    assert r13.exists(two) == 0


@pytest.mark.parametrize("bad", ["soon", "-1", "nan", "86400"])
def test_a_bad_reload_interval_is_a_warning_and_the_default(
    tmp_path: Path,
    run_dir: Path,
    r13: redis.Redis[str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    bad: str,
) -> None:
    """Read by the settings' parser (the same words as a bad ``REDISPREP_TIMEOUT``);
    the rules never fail a write, so it is logged and the default (1 s) is used."""
    monkeypatch.setenv("REDISPREP_RULES_RELOAD_INTERVAL", bad)
    path = tmp_path / "rules.json"
    climate_rules(path, "{wd}/one.nodb", 1_700_000_000)
    caplog.set_level(logging.WARNING, logger="redisprep")
    redisprep.set_rules_path(path)
    prep = RedisPrep.getInstance(str(run_dir))
    prep.timestamp(TaskEnum.build_climate)  # loads the rules: the interval is read
    said = [r.getMessage() for r in caplog.records if "RELOAD_INTERVAL" in r.getMessage()]
    assert len(said) == 1, said
    assert "must be a number of seconds" in said[0] or "not a valid number" in said[0]
    assert "every 1 s" in said[0]
    r13.set(f"{run_dir}/one.nodb", "c")
    prep.timestamp(TaskEnum.build_climate)  # the rules work, and it is said once
    assert r13.exists(f"{run_dir}/one.nodb") == 0
    assert len([r for r in caplog.records if "RELOAD_INTERVAL" in r.getMessage()]) == 1


# -- rendering --------------------------------------------------------------------


@pytest.mark.no_redis
def test_rendering_normalises_the_run_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = Rules.load()
    want = ["/runs/ab/abc/climate.nodb"]
    for wd in ["/runs/ab/abc", "/runs/ab/abc/", "/runs/ab/abc//", "/runs/ab/./abc"]:
        assert rules.keys_for("build_climate", wd)[:1] == want, wd
    monkeypatch.chdir(tmp_path)
    assert rules.keys_for("build_climate", "rel/run/")[0] == f"{tmp_path}/rel/run/climate.nodb"


@pytest.mark.no_redis
def test_placeholders_and_brace_escapes() -> None:
    doc = base()
    doc["controllers"]["climate"] = {
        "keys": ["{{{run_id}}}:{controller}", "{wd}/{controller}.nodb", "x{{wd}}:{run_id}"]
    }
    rules = Rules.from_json(json.dumps(doc))
    keys = rules.keys_for("build_climate", "/runs/a{b}/r{1}")
    assert keys[:3] == ["{r{1}}:climate", "/runs/a{b}/r{1}/climate.nodb", "x{wd}:r{1}"]


@pytest.mark.no_redis
def test_patterns_escape_inserted_values_only() -> None:
    doc = base()
    doc["controllers"]["omni"] = {"keys": ["{wd}/omni.nodb"], "patterns": ["{wd}/_pups/*.nodb"]}
    doc["tasks"]["run_omni"] = {"invalidates": ["omni"]}
    rules = Rules.from_json(json.dumps(doc))
    (plan,) = rules.explain("run_omni", "/runs/a*b?[c]\\d")
    assert plan["keys"] == ["/runs/a*b?[c]\\d/omni.nodb"]  # exact keys: literal
    assert plan["patterns"] == ["/runs/a\\*b\\?\\[c\\]\\\\d/_pups/*.nodb"]  # SCAN: escaped
    # the unrendered explanation shows the templates
    (plan,) = rules.explain("run_omni")
    assert plan["keys"] == ["{wd}/omni.nodb"]


folder_name = st.text(
    alphabet=st.sampled_from(list("ab*?[]\\{} é中._-x")), min_size=1, max_size=24
).filter(lambda s: s.strip() not in {"", ".", ".."} and "/" not in s)


@pytest.mark.no_redis
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=folder_name, other=folder_name)
def test_rendered_keys_name_the_folder_literally(name: str, other: str) -> None:
    rules = Rules.load()
    wd = f"/runs/{name}"
    keys = rules.keys_for(TaskEnum.abstract_watershed, wd)
    assert keys and all(k.startswith(wd + "/") and k.endswith(".nodb") for k in keys)
    for k in keys:
        assert "/" not in k[len(wd) + 1 :]  # `{wd}/<name>.nodb`: nothing else inserted
    if other != name:
        other_keys = set(rules.keys_for(TaskEnum.abstract_watershed, f"/runs/{other}"))
        assert not other_keys & set(keys)
