"""``prep.preflight()``: wepppy's dependency checklist (its preflight service's checks),
evaluated in Rust from one HGETALL with the checks of the rules file, against
a pure-Python model of wepppy's checks written here (independently of the Rust
code): a differential property test on thousands of random hashes in a real
Redis, table tests per check, the one-HGETALL and no-extra-round-trip claims,
and validation of the checks section."""

from __future__ import annotations

import copy
import json
import os
import re
import threading
import time
from pathlib import Path
from typing import Any, Optional

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import redisprep
from redisprep import RedisPrep, Rules, RulesError, TaskEnum
from support.redis_server import RedisServer
from support.turns import TurnCounter, commandstats

# -- the model: wepppy's preflight checks, in Python--------------------------------

CHECK_NAMES = [
    "sbs_map",
    "channels",
    "outlet",
    "subcatchments",
    "landuse",
    "soils",
    "rangeland_cover",
    "climate",
    "rap_ts",
    "openet_ts",
    "wepp",
    "rusle",
    "observed",
    "debris",
    "watar",
    "roads",
    "omni_scenarios",
    "run_path_ce",
    "rhem",
    "dss_export",
    "geneva",
]

_INT = re.compile(r"[+-]?[0-9]+")


def spec_int(v: Optional[str]) -> Optional[int]:
    """Optional sign, one or more ASCII digits, nothing else, signed 64-bit."""
    if v is None or _INT.fullmatch(v) is None:
        return None
    i = int(v)
    return i if -(2**63) <= i < 2**63 else None


def model(h: dict[str, str]) -> dict[str, Any]:
    def ts(task: str) -> Optional[str]:
        return h.get(f"timestamps:{task}")

    def val(x: Optional[str] | int | None) -> Optional[int]:
        return x if isinstance(x, int) or x is None else spec_int(x)

    def gt(a: Any, b: Any) -> bool:
        ia, ib = val(a), val(b)
        return ia is not None and ib is not None and ia > ib

    def max_of(*tasks: str) -> Optional[int]:
        parsed = [i for i in (spec_int(ts(t)) for t in tasks) if i is not None]
        return max(parsed) if parsed else None

    def non_empty(task: str) -> bool:
        return ts(task) not in (None, "")

    rww = ts("run_wepp_watershed")
    w = rww if rww not in (None, "") else ts("run_wepp")
    bl, bs, bc = ts("build_landuse"), ts("build_soils"), ts("build_climate")
    aw, ch = ts("abstract_watershed"), ts("build_channels")

    def after_inputs(task: str) -> bool:
        return all(gt(ts(task), x) for x in (bl, bs, bc, w))

    def after_lsc(task: str) -> bool:
        return all(gt(ts(task), x) for x in (bl, bs, bc))

    no_w = w in (None, "")  # a gridded run: no WEPP timestamp at all
    ru, geneva = ts("build_rusle"), ts("run_geneva")
    has_sbs = h.get("attrs:has_sbs") == "true"

    checklist = {
        "sbs_map": h.get("attrs:has_sbs") == "true",
        "channels": "timestamps:build_channels" in h,
        "outlet": gt(max_of("set_outlet", "find_outlet"), ch),
        "subcatchments": gt(aw, ch),
        "landuse": gt(bl, aw),
        "soils": gt(bs, aw) and (gt(bs, bl) or gt(bs, ts("build_rangeland_cover"))),
        "rangeland_cover": non_empty("build_rangeland_cover"),
        "climate": gt(bc, aw),
        "rap_ts": gt(ts("build_rap_ts"), bc),
        "openet_ts": gt(ts("build_openet_ts"), bc),
        "wepp": (gt(w, bl) and gt(w, bs) and gt(w, bc)) or (no_w and after_lsc("build_rusle")),
        "rusle": gt(ru, bc) and (no_w or gt(ru, w)),
        "observed": after_inputs("run_observed"),
        "debris": after_inputs("run_debris"),
        "watar": after_inputs("run_watar"),
        "roads": gt(ts("run_roads"), w),
        "omni_scenarios": gt(ts("run_omni_scenarios"), w),
        "run_path_ce": gt(ts("run_path_ce"), w),
        "rhem": non_empty("run_rhem"),
        "dss_export": gt(ts("dss_export"), max_of("run_watar", "run_wepp_watershed", "run_wepp")),
        "geneva": after_lsc("run_geneva") and (not has_sbs or gt(geneva, ts("init_sbs_map"))),
    }
    locks = {
        k.removeprefix("locked:"): v == "true" for k, v in h.items() if k.startswith("locked:")
    }
    last = spec_int(h.get("last_modified"))
    if last is None:
        stamps = [spec_int(v) for k, v in h.items() if k.startswith("timestamps:")]
        ints = [i for i in stamps if i is not None]
        last = max(ints) if ints else None
    return {"checklist": checklist, "lock_statuses": locks, "last_modified": last}


# -- fixtures ---------------------------------------------------------------------------


@pytest.fixture
def prep(run_dir: Path) -> RedisPrep:
    return RedisPrep.getInstance(str(run_dir))


def put_hash(r0: redis.Redis[str], key: str, h: dict[str, str]) -> None:
    pipe = r0.pipeline(transaction=True)
    pipe.delete(key)
    if h:
        pipe.hset(key, mapping=h)
    pipe.execute()


# -- the model against Rust, on a real Redis ---------------------------------------------

TASKS = sorted(
    {
        "build_channels", "set_outlet", "find_outlet", "abstract_watershed", "build_landuse",
        "build_soils", "build_rangeland_cover", "build_climate", "build_rap_ts",
        "build_openet_ts", "run_wepp_watershed", "run_wepp", "run_observed", "run_debris",
        "run_watar", "run_omni_scenarios", "run_path_ce", "run_rhem", "dss_export",
        "rmtree", "run_geneva", "build_rusle", "run_roads", "init_sbs_map",
    }
)  # fmt: skip
ODD_VALUES = [
    "", "+5", "-3", "017", "0", " 7", "7 ", "x12", "1_000", "1.0", "1e3", "+", "-", "+-1",
    "\u0663", "\uff17", "true", "True", "9223372036854775807", "-9223372036854775808",
    "9223372036854775808", "99999999999999999999", "7\n",
]  # fmt: skip


def timestamp_value(base: int) -> st.SearchStrategy[str]:
    # values clustered around one base so equal and adjacent times are common
    return st.one_of(
        st.integers(base - 3, base + 3).map(str),
        st.sampled_from(ODD_VALUES),
        st.integers(-(2**64), 2**64).map(str),
    )


@st.composite
def prep_hashes(draw: st.DrawFn) -> dict[str, str]:
    base = draw(st.sampled_from([0, 1_700_000_000]))
    h: dict[str, str] = {}
    for task in draw(st.lists(st.sampled_from(TASKS), unique=True, max_size=len(TASKS))):
        h[f"timestamps:{task}"] = draw(timestamp_value(base))
    if draw(st.booleans()):
        h["attrs:has_sbs"] = draw(st.sampled_from(["true", "false", "True", "TRUE", "", "1"]))
    if draw(st.booleans()):
        h["last_modified"] = draw(timestamp_value(base))
    for name in draw(st.lists(st.sampled_from(["wepp.nodb", "climate.nodb", "x"]), unique=True)):
        h[f"locked:{name}"] = draw(st.sampled_from(["true", "false", "True", ""]))
    if draw(st.booleans()):
        h["attrs:loaded"] = "true"
    return h


@settings(
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(h=prep_hashes())
def test_preflight_matches_the_spec_model(
    prep: RedisPrep, r0: redis.Redis[str], h: dict[str, str]
) -> None:
    put_hash(r0, prep.run_id, h)
    got = prep.preflight()
    want = model(h)
    assert list(got["checklist"]) == CHECK_NAMES
    assert got == want, h


@pytest.mark.no_redis
def test_model_sanity() -> None:
    """The model itself, on wepppy's own examples of what is an integer."""
    assert [spec_int(v) for v in ["017", "+5", "-5", " 7", "x12", "1_000", "\u0663"]] == [
        17, 5, -5, None, None, None, None,
    ]  # fmt: skip
    assert spec_int("9223372036854775807") == 2**63 - 1
    assert spec_int("9223372036854775808") is None


# -- table tests, one per check ------------------------------------------------------------

T = "timestamps:"
BASE_INPUTS = {f"{T}build_landuse": "10", f"{T}build_soils": "11", f"{T}build_climate": "12"}

CASES: list[tuple[str, str, dict[str, str], bool]] = [
    ("sbs_map", "true", {"attrs:has_sbs": "true"}, True),
    ("sbs_map", "case-sensitive", {"attrs:has_sbs": "True"}, False),
    ("sbs_map", "missing", {}, False),
    ("channels", "exists-even-empty", {f"{T}build_channels": ""}, True),
    ("channels", "missing", {f"{T}build_outlet": "1"}, False),
    ("outlet", "set-newer", {f"{T}build_channels": "5", f"{T}set_outlet": "6"}, True),
    ("outlet", "find-newer", {f"{T}build_channels": "5", f"{T}find_outlet": "6"}, True),
    ("outlet", "max-over-parseable",
     {f"{T}build_channels": "5", f"{T}set_outlet": "x9", f"{T}find_outlet": "6"}, True),
    ("outlet", "equal", {f"{T}build_channels": "5", f"{T}set_outlet": "5"}, False),
    ("outlet", "none-parse", {f"{T}build_channels": "5", f"{T}set_outlet": "9x"}, False),
    ("outlet", "no-channels", {f"{T}set_outlet": "6"}, False),
    ("subcatchments", "newer", {f"{T}abstract_watershed": "6", f"{T}build_channels": "5"}, True),
    ("subcatchments", "older", {f"{T}abstract_watershed": "4", f"{T}build_channels": "5"}, False),
    ("landuse", "leading-zero", {f"{T}build_landuse": "017", f"{T}abstract_watershed": "16"}, True),
    ("landuse", "space", {f"{T}build_landuse": " 17", f"{T}abstract_watershed": "16"}, False),
    ("soils", "newer-than-landuse",
     {f"{T}build_soils": "9", f"{T}abstract_watershed": "5", f"{T}build_landuse": "8"}, True),
    ("soils", "newer-than-rangeland-only",
     {f"{T}build_soils": "9", f"{T}abstract_watershed": "5", f"{T}build_landuse": "10",
      f"{T}build_rangeland_cover": "8"}, True),
    ("soils", "neither", {f"{T}build_soils": "9", f"{T}abstract_watershed": "5"}, False),
    ("soils", "older-than-watershed",
     {f"{T}build_soils": "9", f"{T}abstract_watershed": "9", f"{T}build_landuse": "1"}, False),
    ("rangeland_cover", "non-empty", {f"{T}build_rangeland_cover": "x"}, True),
    ("rangeland_cover", "empty", {f"{T}build_rangeland_cover": ""}, False),
    ("climate", "signed", {f"{T}build_climate": "+6", f"{T}abstract_watershed": "-6"}, True),
    ("climate", "missing", {f"{T}build_climate": "6"}, False),
    ("rap_ts", "newer", {f"{T}build_rap_ts": "13", f"{T}build_climate": "12"}, True),
    ("rap_ts", "equal", {f"{T}build_rap_ts": "12", f"{T}build_climate": "12"}, False),
    ("openet_ts", "newer", {f"{T}build_openet_ts": "13", f"{T}build_climate": "12"}, True),
    ("openet_ts", "too-big", {f"{T}build_openet_ts": "9" * 20, f"{T}build_climate": "12"}, False),
    ("wepp", "watershed", {**BASE_INPUTS, f"{T}run_wepp_watershed": "13"}, True),
    ("wepp", "fallback-run-wepp", {**BASE_INPUTS, f"{T}run_wepp": "13"}, True),
    ("wepp", "empty-watershed-falls-back",
     {**BASE_INPUTS, f"{T}run_wepp_watershed": "", f"{T}run_wepp": "13"}, True),
    ("wepp", "bad-watershed-does-not-fall-back",
     {**BASE_INPUTS, f"{T}run_wepp_watershed": "x", f"{T}run_wepp": "13"}, False),
    ("wepp", "older-watershed-wins",
     {**BASE_INPUTS, f"{T}run_wepp_watershed": "11", f"{T}run_wepp": "13"}, False),
    ("wepp", "not-newer-than-climate", {**BASE_INPUTS, f"{T}run_wepp_watershed": "12"}, False),
    ("observed", "after-all",
     {**BASE_INPUTS, f"{T}run_wepp": "13", f"{T}run_observed": "14"}, True),
    ("observed", "no-W", {**BASE_INPUTS, f"{T}run_observed": "14"}, False),
    ("debris", "after-all",
     {**BASE_INPUTS, f"{T}run_wepp_watershed": "13", f"{T}run_debris": "14"}, True),
    ("debris", "equal-W",
     {**BASE_INPUTS, f"{T}run_wepp_watershed": "14", f"{T}run_debris": "14"}, False),
    ("watar", "after-all",
     {**BASE_INPUTS, f"{T}run_wepp_watershed": "13", f"{T}run_watar": "14"}, True),
    ("watar", "before-soils",
     {**BASE_INPUTS, f"{T}run_wepp_watershed": "9", f"{T}run_watar": "11"}, False),
    ("omni_scenarios", "after-W", {f"{T}run_wepp": "1", f"{T}run_omni_scenarios": "2"}, True),
    ("omni_scenarios", "no-W", {f"{T}run_omni_scenarios": "2"}, False),
    ("run_path_ce", "after-W", {f"{T}run_wepp_watershed": "1", f"{T}run_path_ce": "2"}, True),
    ("run_path_ce", "before-W", {f"{T}run_wepp_watershed": "3", f"{T}run_path_ce": "2"}, False),
    ("rhem", "non-empty", {f"{T}run_rhem": "0"}, True),
    ("rhem", "empty", {f"{T}run_rhem": ""}, False),
    ("dss_export", "after-max",
     {f"{T}dss_export": "9", f"{T}run_watar": "8", f"{T}run_wepp": "3"}, True),
    ("dss_export", "max-not-W",
     {f"{T}dss_export": "9", f"{T}run_wepp_watershed": "5", f"{T}run_wepp": "10"}, False),
    ("dss_export", "unparseable-ignored",
     {f"{T}dss_export": "9", f"{T}run_watar": "x", f"{T}run_wepp_watershed": "5"}, True),
    ("dss_export", "nothing-to-compare", {f"{T}dss_export": "9"}, False),
    # wepppy's checklist_test.go (services/preflight2) and issue 27's examples:
    ("rusle", "newer-than-climate-and-W",
     {f"{T}build_climate": "100", f"{T}run_wepp_watershed": "200", f"{T}build_rusle": "250",
      f"{T}build_landuse": "90", f"{T}build_soils": "95", f"{T}abstract_watershed": "80",
      f"{T}build_channels": "70", f"{T}set_outlet": "75", f"{T}build_subcatchments": "85"}, True),
    ("rusle", "climate-newer",
     {f"{T}build_climate": "300", f"{T}run_wepp_watershed": "200", f"{T}build_rusle": "250"},
     False),
    ("rusle", "gridded-no-W",
     {f"{T}build_landuse": "100", f"{T}build_soils": "110", f"{T}build_climate": "120",
      f"{T}build_rusle": "130"}, True),
    ("rusle", "older-than-W",
     {f"{T}build_climate": "100", f"{T}run_wepp": "300", f"{T}build_rusle": "250"}, False),
    ("rusle", "no-climate", {f"{T}build_rusle": "250"}, False),
    ("wepp", "gridded-rusle-fresh",
     {f"{T}build_landuse": "100", f"{T}build_soils": "110", f"{T}build_climate": "120",
      f"{T}build_rusle": "130"}, True),
    ("wepp", "gridded-rusle-stale",
     {f"{T}build_landuse": "100", f"{T}build_soils": "110", f"{T}build_climate": "140",
      f"{T}build_rusle": "130"}, False),
    ("wepp", "stale-W-not-rescued-by-rusle",
     {**BASE_INPUTS, f"{T}run_wepp_watershed": "11", f"{T}build_rusle": "20"}, False),
    ("roads", "newer-than-W", {f"{T}run_wepp_watershed": "200", f"{T}run_roads": "210"}, True),
    ("roads", "no-W", {f"{T}run_roads": "210"}, False),
    ("geneva", "fresh",
     {f"{T}run_geneva": "400", f"{T}build_landuse": "100", f"{T}build_soils": "200",
      f"{T}build_climate": "300"}, True),
    ("geneva", "climate-newer",
     {f"{T}run_geneva": "250", f"{T}build_landuse": "100", f"{T}build_soils": "200",
      f"{T}build_climate": "300"}, False),
    ("geneva", "sbs-map-newer-with-has-sbs",
     {"attrs:has_sbs": "true", f"{T}run_geneva": "350", f"{T}build_landuse": "100",
      f"{T}build_soils": "200", f"{T}build_climate": "300", f"{T}init_sbs_map": "360"}, False),
    ("geneva", "sbs-map-newer-without-has-sbs",
     {"attrs:has_sbs": "false", f"{T}run_geneva": "350", f"{T}build_landuse": "100",
      f"{T}build_soils": "200", f"{T}build_climate": "300", f"{T}init_sbs_map": "360"}, True),
    ("geneva", "has-sbs-is-case-sensitive",
     {"attrs:has_sbs": "True", f"{T}run_geneva": "350", f"{T}build_landuse": "100",
      f"{T}build_soils": "200", f"{T}build_climate": "300", f"{T}init_sbs_map": "360"}, True),
    ("geneva", "has-sbs-older-sbs-map",
     {"attrs:has_sbs": "true", f"{T}run_geneva": "350", f"{T}build_landuse": "100",
      f"{T}build_soils": "200", f"{T}build_climate": "300", f"{T}init_sbs_map": "340"}, True),
    ("geneva", "has-sbs-missing-sbs-map",
     {"attrs:has_sbs": "true", f"{T}run_geneva": "350", f"{T}build_landuse": "100",
      f"{T}build_soils": "200", f"{T}build_climate": "300"}, False),
    ("geneva", "missing-run-geneva",
     {f"{T}build_landuse": "100", f"{T}build_soils": "200", f"{T}build_climate": "300"}, False),
    ("geneva", "missing-soils",
     {f"{T}run_geneva": "400", f"{T}build_landuse": "100", f"{T}build_climate": "300"}, False),
    ("geneva", "no-has-sbs-no-sbs-map",
     {f"{T}run_geneva": "400", f"{T}build_landuse": "100", f"{T}build_soils": "200",
      f"{T}build_climate": "300", f"{T}init_sbs_map": "999"}, True),
]  # fmt: skip


@pytest.mark.parametrize(
    ("check", "hash_", "expected"),
    [pytest.param(c, h, e, id=f"{c}-{n}") for c, n, h, e in CASES],
)
def test_check_edge_cases(
    prep: RedisPrep, r0: redis.Redis[str], check: str, hash_: dict[str, str], expected: bool
) -> None:
    put_hash(r0, prep.run_id, hash_)
    assert model(hash_)["checklist"][check] is expected  # the model agrees with the table
    assert prep.preflight()["checklist"][check] is expected


@pytest.mark.no_redis
def test_every_check_has_table_cases() -> None:
    seen = {(c, e) for c, _, _, e in CASES}
    assert {c for c, _ in seen} == set(CHECK_NAMES)
    assert all((c, True) in seen and (c, False) in seen for c in CHECK_NAMES)


# -- the shape: names, locks, last_modified, explain ---------------------------------------


def test_names_locks_and_last_modified(prep: RedisPrep, r0: redis.Redis[str]) -> None:
    assert Rules.load().checks == CHECK_NAMES
    put_hash(r0, prep.run_id, {})
    assert prep.preflight() == {
        "checklist": dict.fromkeys(CHECK_NAMES, False),
        "lock_statuses": {},
        "last_modified": None,
    }
    put_hash(
        r0,
        prep.run_id,
        {
            "locked:wepp.nodb": "true",
            "locked:climate.nodb": "false",
            "locked:x": "True",
            "timestamps:build_climate": "7",
            "timestamps:run_geneva": "9",  # any timestamps:* field counts
            "timestamps:bad": "99x",
            "lastmodified": "100",
        },
    )
    got = prep.preflight()
    assert got["lock_statuses"] == {"wepp.nodb": True, "climate.nodb": False, "x": False}
    assert got["last_modified"] == 9
    r0.hset(prep.run_id, "last_modified", "3")  # the field wins, even when older
    assert prep.preflight()["last_modified"] == 3
    r0.hset(prep.run_id, "last_modified", "soon")  # not an integer: fall back
    assert prep.preflight()["last_modified"] == 9


def test_explain_says_why_checks_are_false(prep: RedisPrep, r0: redis.Redis[str]) -> None:
    put_hash(
        r0,
        prep.run_id,
        {**BASE_INPUTS, f"{T}run_wepp_watershed": "12", f"{T}abstract_watershed": "5"},
    )
    got = prep.preflight(explain=True)
    explain = got.pop("explain")
    assert got == prep.preflight()
    false = {k for k, v in got["checklist"].items() if not v}
    assert set(explain) == false
    assert all(explain[k] for k in false)
    assert any("12" in r and "build_climate" in r for r in explain["wepp"]), explain["wepp"]
    assert any("has_sbs" in r for r in explain["sbs_map"])


def _groups_used(doc: dict[str, Any], named: set[str]) -> set[str]:
    """``named`` and every group they use, through other groups (from the raw JSON)."""
    out: set[str] = set()
    todo = list(named)
    while todo:
        g = todo.pop()
        if g not in out:
            out.add(g)
            for ops in doc["groups"][g].values():
                todo.extend(o[1:] for o in ops if o.startswith("@"))
    return out


@pytest.mark.no_redis
@settings(max_examples=300, deadline=None)
@given(h=prep_hashes())
def test_explain_checks_is_the_evaluators_explanation(h: dict[str, str]) -> None:
    """``Rules.explain_checks`` (what ``preflight`` in the CLI prints) is the
    evaluator's explained result, plus each check's task and the groups its
    reasons name, written as in the rules file."""
    rules = Rules.load()
    report = rules.explain_checks(h)
    tasks, groups = report.pop("tasks"), report.pop("groups")
    assert report == rules.evaluate_checks(h, explain=True)
    assert report == rules.evaluate_checks(list(h.items()), explain=True)
    assert list(tasks) == CHECK_NAMES
    reasons = [r for rs in report["explain"].values() for r in rs]
    named = {g for g in RULES_DOC["groups"] if any(f"@{g} " in r for r in reasons)}
    assert set(groups) == _groups_used(RULES_DOC, named)
    assert groups == {g: RULES_DOC["groups"][g] for g in groups}


@pytest.mark.no_redis
def test_explain_checks_names_tasks_and_nested_groups() -> None:
    groups = {**RULES_DOC["groups"], "late": {"max": ["@W", "run_debris"]}}
    checks = {
        "flag": {"equals": {"field": "attrs:has_sbs", "value": "true"}},
        "after": {"not": {"newer": "@late", "than_any": ["dss_export"]}},
        "either": {"any": [{"exists": "attrs:x"}, {"non_empty": "timestamps:build_soils"}]},
    }
    rules = Rules.from_json(with_checks(groups=groups, checks=checks))
    report = rules.explain_checks({f"{T}run_wepp": "5", f"{T}dss_export": "4"})
    assert report["tasks"] == {"flag": None, "after": "run_wepp_watershed", "either": "build_soils"}
    assert report["explain"] == {
        "flag": ['attrs:has_sbs is missing (expected "true")'],
        "after": ["negated condition holds"],
        "either": ["none of: attrs:x is missing; timestamps:build_soils is missing or empty"],
    }
    assert report["groups"] == {}  # "negated condition holds" names no group
    report = rules.explain_checks({f"{T}dss_export": "4", "attrs:x": ""})
    assert report["checklist"] == {"flag": False, "after": True, "either": True}
    checks["after"] = {"newer": "dss_export", "than_all": ["@late"]}
    rules = Rules.from_json(with_checks(groups=groups, checks=checks))
    report = rules.explain_checks({f"{T}run_wepp": "5", f"{T}dss_export": "4"})
    assert report["explain"]["after"] == ["dss_export (4) is not newer than @late (5)"]
    assert report["tasks"]["after"] == "dss_export"
    assert report["groups"] == {"W": groups["W"], "late": groups["late"]}


# -- round trips ---------------------------------------------------------------------------


def test_preflight_is_one_hgetall(private_server: RedisServer, run_dir: Path) -> None:
    admin = private_server.client(0)
    prep = RedisPrep.getInstance(str(run_dir))
    prep.timestamp(TaskEnum.build_climate)
    admin.config_resetstat()
    before = redisprep.stats()["round_trips"]
    prep.preflight()
    prep.preflight(explain=True)
    assert commandstats(admin) == {"hgetall": 2}
    assert redisprep.stats()["round_trips"] - before == 2


def test_timestamp_and_preflight_need_no_extra_round_trip(
    private_server: RedisServer, run_dir: Path
) -> None:
    proxy = TurnCounter(private_server.port)
    try:
        redisprep.configure(f"redis://127.0.0.1:{proxy.port}/0")
        admin = private_server.client(0)
        admin.ping()
        wd = str(run_dir)
        RedisPrep.getInstance(wd)[TaskEnum.abstract_watershed] = int(time.time()) - 10
        prep = RedisPrep.getInstance(wd)  # a fresh instance has read no hash yet
        assert prep.last_preflight is None
        turns = proxy.count()
        admin.config_resetstat()
        fresh = prep.timestamp_and_preflight(TaskEnum.build_climate)
        assert proxy.count() - turns == 1
        assert commandstats(admin)["hgetall"] == 1
        assert fresh["checklist"]["climate"] is True  # sees its own write
        turns = proxy.count()
        assert prep.last_preflight == fresh  # no round trip at all
        assert proxy.count() == turns
        assert fresh == prep.preflight()
        assert fresh["checklist"]["rhem"] is False
        assert prep.timestamp(TaskEnum.run_rhem) is None  # drop-in callers get None
        last = prep.last_preflight
        assert last is not None and last["checklist"]["rhem"] is True
        assert proxy.count() - turns == 2  # preflight() + timestamp(); last_preflight is free
        assert last == model(admin.hgetall(prep.run_id))
    finally:
        redisprep.configure(private_server.url)
        proxy.close()


# -- validation of the checks section --------------------------------------------------------

RULES_DOC: dict[str, Any] = json.loads(Path(redisprep.rules_path()).read_text())


def with_checks(groups: Any = None, checks: Any = None) -> str:
    doc = copy.deepcopy(RULES_DOC)
    if groups is not None:
        doc["groups"] = groups
    if checks is not None:
        doc["checks"] = checks
    return json.dumps(doc)


CHECK_ERRORS: dict[str, tuple[str, str, str]] = {
    "unknown task in a check": (
        with_checks(checks={"wepp": {"newer": "@W", "than_all": ["build_climat"]}}),
        "checks.wepp.than_all[0]",
        'unknown task "build_climat"',
    ),
    "unknown subject task": (
        with_checks(checks={"x": {"newer": "run_wep", "than_any": ["build_climate"]}}),
        "checks.x.newer",
        'unknown task "run_wep"',
    ),
    "unknown task in a group": (
        with_checks(groups={**RULES_DOC["groups"], "W": {"first_present": ["run_wepp_ws"]}}),
        "groups.W.first_present[0]",
        'unknown task "run_wepp_ws"',
    ),
    "unknown primitive": (
        with_checks(checks={"x": {"newest": "build_climate"}}),
        "checks.x.newest",
        'unknown check primitive "newest"',
    ),
    "unknown nested primitive": (
        with_checks(checks={"x": {"all": [{"exists": "attrs:a"}, {"maybe": 1}]}}),
        "checks.x.all[1].maybe",
        'unknown check primitive "maybe"',
    ),
    "unknown group": (
        with_checks(checks={"x": {"newer": "@V", "than_all": ["build_climate"]}}),
        "checks.x.newer",
        'unknown group "@V"',
    ),
    "unknown key beside a primitive": (
        with_checks(checks={"x": {"exists": "attrs:a", "why": "b"}}),
        "checks.x.why",
        'unknown key "why"',
    ),
    "empty all": (
        with_checks(checks={"x": {"all": []}}),
        "checks.x.all",
        "expected a non-empty array of checks",
    ),
    "empty group": (
        with_checks(groups={**RULES_DOC["groups"], "E": {"max": []}}),
        "groups.E.max",
        "expected a non-empty array",
    ),
    "newer without a list": (
        with_checks(checks={"x": {"newer": "@W"}}),
        "checks.x",
        '"newer" needs exactly one of "than_all" or "than_any"',
    ),
    "two primitives": (
        with_checks(checks={"x": {"exists": "timestamps:a", "non_empty": "timestamps:a"}}),
        "checks.x",
        "a check has exactly one of",
    ),
    "group with two kinds": (
        with_checks(groups={"W": {"max": ["run_wepp"], "first_present": ["run_wepp"]}}),
        "groups.W",
        'a group has exactly one of "max" or "first_present"',
    ),
    "equals without value": (
        with_checks(checks={"x": {"equals": {"field": "attrs:has_sbs"}}}),
        "checks.x.equals.value",
        "expected a string",
    ),
    "checks not an object": (with_checks(checks=[]), "checks", "expected an object"),
}


@pytest.mark.no_redis
@pytest.mark.parametrize("case", list(CHECK_ERRORS))
def test_checks_section_errors_have_paths(case: str) -> None:
    text, path, message = CHECK_ERRORS[case]
    with pytest.raises(RulesError) as info:
        Rules.from_json(text)
    assert any(p == path and message in m for p, m in info.value.issues), info.value.issues


@pytest.mark.no_redis
def test_group_cycles_are_named() -> None:
    groups = {
        **RULES_DOC["groups"],
        "A": {"max": ["build_climate", "@B"]},
        "B": {"first_present": ["@C"]},
        "C": {"max": ["@A"]},
    }
    with pytest.raises(RulesError) as info:
        Rules.from_json(with_checks(groups=groups))
    (issue,) = info.value.issues
    path, message = issue
    assert path == "groups" and message.startswith("group cycle: ")
    chain = message.removeprefix("group cycle: ").split(" -> ")
    assert chain[0] == chain[-1] and set(chain) == {"A", "B", "C"} and len(chain) == 4


# -- one rules snapshot per operation ---------------------------------------------------------


def _version(path: Path, name: str, mtime: int) -> None:
    """Rules whose build_climate invalidates ``{wd}/<name>.nodb`` and whose only
    check is ``<name>``: which version an operation used shows in both halves."""
    doc = {
        "version": 1,
        "controllers": {name: {"keys": [f"{{wd}}/{name}.nodb"]}},
        "tasks": {"build_climate": {"invalidates": [name]}},
        "checks": {name: {"exists": "timestamps:build_climate"}},
    }
    tmp = path.with_suffix(f".{name}.tmp")
    tmp.write_text(json.dumps(doc))
    os.utime(tmp, (mtime, mtime))
    os.replace(tmp, path)


def test_timestamp_and_preflight_use_one_rules_snapshot(
    tmp_path: Path, run_dir: Path, r13: redis.Redis[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rules file flips between two versions as fast as it can while
    ``timestamp_and_preflight`` runs: the caches it deleted and the checklist it
    returned always come from the same version (the rules are taken once)."""
    monkeypatch.setenv("REDISPREP_RULES_RELOAD_INTERVAL", "0")
    path = tmp_path / "rules.json"
    _version(path, "one", 1_700_000_000)
    redisprep.set_rules_path(path)
    prep = RedisPrep.getInstance(str(run_dir))
    stop = threading.Event()

    def flip() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            _version(path, ("one", "two")[n % 2], 1_700_000_000 + n)

    flipper = threading.Thread(target=flip)
    flipper.start()
    seen = set()
    try:
        for _ in range(300):
            r13.mset({f"{run_dir}/one.nodb": "c", f"{run_dir}/two.nodb": "c"})
            checks = set(prep.timestamp_and_preflight(TaskEnum.build_climate)["checklist"])
            deleted = {n for n in ("one", "two") if not r13.exists(f"{run_dir}/{n}.nodb")}
            assert checks == deleted and len(deleted) == 1, (checks, deleted)
            seen |= deleted
    finally:
        stop.set()
        flipper.join()
    assert seen == {"one", "two"}, "the file never changed under the calls"


def test_timestamp_and_preflight_without_rules_write_nothing(
    tmp_path: Path, run_dir: Path, r0: redis.Redis[str]
) -> None:
    """No valid rules: refused before the write (never an error after a write
    that happened), so Redis and the dump are as they were."""
    prep = RedisPrep.getInstance(str(run_dir))
    prep[TaskEnum.build_landuse] = 5
    before = (r0.hgetall(prep.hash_key), (run_dir / "redisprep.dump").read_bytes())
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    redisprep.set_rules_path(bad)
    with pytest.raises(redisprep.ConfigError, match="no valid cache invalidation rules"):
        prep.timestamp_and_preflight(TaskEnum.build_climate)
    assert (r0.hgetall(prep.hash_key), (run_dir / "redisprep.dump").read_bytes()) == before
