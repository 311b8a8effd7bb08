"""Hostile and broken input: odd run folder names, corrupt dumps, keys that
are not tasks, and broken rules files. Never a panic, never a write."""

from __future__ import annotations

import enum
import json
import logging
from pathlib import Path
from typing import Any, Callable

import pytest
import redis

import redisprep
from redisprep import RedisPrep, Rules, TaskEnum

from .conftest import read_dump, redis_hash

# -- run folder names ----------------------------------------------------------

RULES = {
    "version": 1,
    "controllers": {
        "climate": {
            "keys": ["{wd}/climate.nodb", "rid:{run_id}:climate"],
            "patterns": ["{wd}/climate-*.json", "rid:{run_id}:part:*"],
        },
    },
    "tasks": {"build_climate": {"invalidates": ["climate"]}},
}

#: (run folder name, decoys: other runs whose names a glob or a format string
#: built from the name would also reach)
NAMES: list[tuple[str, list[str]]] = [
    ("a*b", ["axxb", "ab"]),
    ("a?b", ["axb"]),
    ("[ab]", ["a", "b"]),
    ("a\\b", ["ab"]),
    ("x]y[z", ["x]y[z-2"]),
    ("{run_id}", ["run_id"]),
    ("{}{{x}}", ["x"]),
    ("a b  c", ["a", "a_b__c"]),
    ("ünï cødé-中文-🌲", ["unicode"]),
    ("x" * 255, ["x" * 254]),  # NAME_MAX
    ("é" * 127, ["é" * 126]),  # 254 bytes of UTF-8
    ("-dash.dot", [".dash"]),
]


def seed(root: Path, name: str, c13: redis.Redis[str]) -> dict[str, str]:
    """A run with a dump, a first timestamp, and cache keys of each kind."""
    wd = root / name
    wd.mkdir()
    prep = RedisPrep.getInstance(str(wd))
    prep.timestamp(TaskEnum.build_soils)
    keys = {
        f"{wd}/climate.nodb": "state",
        f"rid:{name}:climate": "state",
        f"{wd}/climate-1.json": "part",
        f"rid:{name}:part:1": "part",
    }
    for k, v in keys.items():
        c13.set(k, v, ex=3600)
    return keys


@pytest.mark.parametrize(("name", "decoys"), NAMES, ids=lambda v: repr(v)[:24])
@pytest.mark.parametrize("suffix", ["", "/", "//"])
def test_odd_run_names_hit_their_own_keys_only(
    tmp_path: Path,
    r0: redis.Redis[str],
    c13: redis.Redis[str],
    name: str,
    decoys: list[str],
    suffix: str,
) -> None:
    rules_file = tmp_path / "rules.json"
    rules_file.write_text(json.dumps(RULES))
    redisprep.set_rules_path(rules_file)
    root = tmp_path / "runs"
    root.mkdir()
    mine = seed(root, name, c13)
    others = {d: seed(root, d, c13) for d in decoys}
    before = {d: (r0.hgetall(d), (root / d / "redisprep.dump").read_bytes()) for d in decoys}

    prep = RedisPrep.getInstance(str(root / name) + suffix)
    assert prep.run_id == name
    prep.timestamp(TaskEnum.build_climate)

    h = redis_hash(r0, name)
    assert "timestamps:build_climate" in h and "timestamps:build_soils" in h
    assert read_dump(root / name) == h
    assert c13.exists(*mine) == 0  # exact keys and pattern matches of this run: gone
    for d, keys in others.items():  # other runs: untouched, TTL kept
        assert (r0.hgetall(d), (root / d / "redisprep.dump").read_bytes()) == before[d]
        for k, v in keys.items():
            assert c13.get(k) == v, (d, k)
            assert c13.ttl(k) > 3500


def test_unencodable_folder_name_is_an_error_not_a_crash(tmp_path: Path) -> None:
    bad = str(tmp_path) + "/\udcff-undecodable"  # os.fsdecode of a non-UTF-8 byte
    with pytest.raises(UnicodeEncodeError):
        RedisPrep.getInstance(bad)


# -- corrupt dumps -------------------------------------------------------------

GOOD = b'{"attrs:loaded": "true", "timestamps:build_climate": "1700000000"}'
BIG = 50 * 1024 * 1024
CORRUPT: dict[str, Callable[[], bytes]] = {
    "truncated": lambda: GOOD[:-7],
    "empty": lambda: b"",
    "not-json": lambda: b"redisprep dump, honest",
    "list": lambda: b'["attrs:loaded", "true"]',
    "string": lambda: b'"attrs:loaded"',
    "null-value": lambda: b'{"timestamps:x": null}',
    "float-value": lambda: b'{"timestamps:x": 1.5}',
    "bool-value": lambda: b'{"attrs:loaded": true}',
    "object-value": lambda: b'{"timestamps:x": {"a": "1"}}',
    "list-value": lambda: b'{"timestamps:x": ["1"]}',
    "nan": lambda: b'{"timestamps:x": NaN}',
    "bad-utf8": lambda: b'{"timestamps:x": "\xff\xfe"}',
    "bom": lambda: b"\xef\xbb\xbf" + GOOD,
    "deep": lambda: b'{"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "trailing-garbage": lambda: GOOD + b"}",
    "50MB-valid-json": lambda: b'{"timestamps:x": "' + b"1" * BIG + b'"}',
    "50MB-garbage": lambda: b"\x00\xff" * (BIG // 2),
}


@pytest.mark.parametrize("kind", list(CORRUPT))
def test_corrupt_dump_is_a_clear_error_and_nothing_moves(
    run_dir: Path, r0: redis.Redis[str], kind: str
) -> None:
    path = run_dir / "redisprep.dump"
    data = CORRUPT[kind]()
    path.write_bytes(data)
    mtime = path.stat().st_mtime_ns
    with pytest.raises(redisprep.DumpFormatError) as info:
        RedisPrep.getInstance(str(run_dir))
    assert isinstance(info.value, ValueError)
    assert str(path) in str(info.value)
    assert len(str(info.value)) < 1000  # names the problem, does not echo the file
    prep = RedisPrep(str(run_dir))  # the constructor alone does not read the dump
    with pytest.raises(redisprep.DumpFormatError):
        prep.lazy_load()
    assert r0.exists("abc-def") == 0  # Redis unchanged
    assert path.stat().st_mtime_ns == mtime
    assert path.read_bytes() == data  # file untouched


def test_corrupt_dump_is_never_overwritten_by_a_partial_hash(
    run_dir: Path, r0: redis.Redis[str]
) -> None:
    """A long-lived instance writes after Redis lost the hash while the dump is
    corrupt: the write fails loudly and the file stays for a person to fix."""
    prep = RedisPrep.getInstance(str(run_dir))
    prep.timestamp(TaskEnum.build_climate)
    path = run_dir / "redisprep.dump"
    path.write_bytes(GOOD[:-7])
    r0.delete("abc-def")  # the hash is gone (e.g. Redis restarted empty)
    with pytest.raises(redisprep.DumpFormatError):
        prep.timestamp(TaskEnum.build_soils)
    assert path.read_bytes() == GOOD[:-7]
    path.write_bytes(GOOD)  # repaired by hand: the next write merges it back
    prep.timestamp(TaskEnum.build_landuse)
    h = redis_hash(r0, "abc-def")
    assert h["timestamps:build_climate"] == "1700000000"
    assert read_dump(run_dir) == h


def test_integer_values_in_a_dump_load_like_legacy(run_dir: Path, r0: redis.Redis[str]) -> None:
    (run_dir / "redisprep.dump").write_bytes(b'{"timestamps:build_climate": 1700000000}')
    prep = RedisPrep.getInstance(str(run_dir))
    assert prep[TaskEnum.build_climate] == 1700000000
    assert r0.hget("abc-def", "timestamps:build_climate") == "1700000000"


# -- keys that are not tasks ---------------------------------------------------


class RaisingStr:
    def __str__(self) -> str:
        raise RuntimeError("no str for you")


class RaisingEnum(enum.Enum):
    member = "build_climate"

    def __str__(self) -> str:
        raise RuntimeError("no str for you")


class NonStrEnum(enum.Enum):
    member = "build_climate"

    def __str__(self) -> Any:
        return 42


BAD_KEYS: list[Any] = [
    None,
    5,
    5.5,
    True,
    b"build_climate",
    object(),
    RaisingStr(),
    RaisingEnum.member,
    NonStrEnum.member,
    ["build_climate"],
]


def key_calls(prep: RedisPrep, key: Any) -> dict[str, Callable[[], object]]:
    return {
        "timestamp": lambda: prep.timestamp(key),
        "__setitem__": lambda: prep.__setitem__(key, 1),
        "__getitem__": lambda: prep[key],
        "remove_timestamp": lambda: prep.remove_timestamp(key),
        "set_rq_job_id": lambda: prep.set_rq_job_id(key, "job"),
        "get_rq_job_id": lambda: prep.get_rq_job_id(key),
        "_set_bool_config": lambda: prep._set_bool_config(key, True),
        "invalidate_caches_for_task": lambda: prep.invalidate_caches_for_task(key),
        "explain": lambda: prep.explain(key),
    }


@pytest.mark.parametrize("key", BAD_KEYS, ids=lambda k: type(k).__name__)
def test_bad_keys_are_refused_before_anything_is_written(
    run_dir: Path, r0: redis.Redis[str], c13: redis.Redis[str], key: Any
) -> None:
    prep = RedisPrep.getInstance(str(run_dir))
    prep.timestamp(TaskEnum.build_soils)
    c13.set(f"{run_dir}/climate.nodb", "cached")
    hash_before = r0.hgetall("abc-def")
    dump_before = (run_dir / "redisprep.dump").read_bytes()
    for name, call in key_calls(prep, key).items():
        with pytest.raises(TypeError) as info:  # InvalidKeyError is a TypeError
            call()
        assert isinstance(info.value, redisprep.InvalidKeyError), (name, info.value)
    assert r0.hgetall("abc-def") == hash_before
    assert (run_dir / "redisprep.dump").read_bytes() == dump_before
    assert c13.get(f"{run_dir}/climate.nodb") == "cached"


@pytest.mark.parametrize("value", [None, True, object(), ["1"], {"a": 1}], ids=repr)
def test_bad_values_are_refused_before_anything_is_written(
    run_dir: Path, r0: redis.Redis[str], value: Any
) -> None:
    prep = RedisPrep.getInstance(str(run_dir))
    hash_before = r0.hgetall("abc-def")
    dump_before = (run_dir / "redisprep.dump").read_bytes()
    for call in (
        lambda: prep.__setitem__("build_climate", value),
        lambda: prep.set_rq_job_id("build_climate", value),
        lambda: prep.set_archive_job_id(value),
    ):
        with pytest.raises(redisprep.InvalidKeyError):
            call()
    assert r0.hgetall("abc-def") == hash_before
    assert (run_dir / "redisprep.dump").read_bytes() == dump_before


# -- broken rules files --------------------------------------------------------


def rules_text(**changes: Any) -> str:
    doc: dict[str, Any] = json.loads(json.dumps(RULES))
    doc.update(changes)
    return json.dumps(doc)


BAD_RULES: dict[str, str | bytes] = {
    "version-as-string": rules_text(version="1"),
    "unknown-version": rules_text(version=2),
    "controllers-list": rules_text(controllers=[]),
    "keys-string": rules_text(controllers={"climate": {"keys": "{wd}/climate.nodb"}}),
    "global-string": rules_text(controllers={"climate": {"keys": ["{wd}/c"], "global": "yes"}}),
    "db-string": rules_text(db="13"),
    "db-out-of-range": rules_text(db=99),
    "invalidates-number": rules_text(tasks={"build_climate": {"invalidates": 5}}),
    "unknown-placeholder": rules_text(controllers={"climate": {"keys": ["{wdir}/climate.nodb"]}}),
    "unclosed-brace": rules_text(controllers={"climate": {"keys": ["{wd/climate.nodb"]}}),
    "no-run-in-template": rules_text(controllers={"climate": {"keys": ["climate.nodb"]}}),
    "no-run-in-pattern": rules_text(
        controllers={"climate": {"keys": ["{wd}/c"], "patterns": ["*.nodb"]}}
    ),
    "unknown-controller": rules_text(tasks={"build_climate": {"invalidates": ["nope"]}}),
    "cycle": rules_text(
        tasks={
            "build_climate": {"invalidates": ["climate"], "cascades": ["x"]},
            "x": {"invalidates": [], "cascades": ["build_climate"]},
        }
    ),
    "unknown-top-level-key": rules_text(extra=1),
    "huge": rules_text(description="x" * (5 * 1024 * 1024)),
    "deep-array": "[" * 200_000 + "]" * 200_000,
    "deep-object": '{"a": ' * 50_000 + "1" + "}" * 50_000,
    "deep-in-valid-doc": rules_text(description=json.loads("[" * 100 + "]" * 100)).replace(
        '"description": [', '"description": ' + "[" * 5000 + "[", 1
    ),
    "big-numbers": rules_text(version=10**30, db=-(10**30)),
    "not-json": "version: 1",
    "empty": "",
    "null": "null",
    "bad-utf8": b'{"version": 1, "description": "\xff"}',
    "nul-bytes": "\x00" * 64,
}


@pytest.mark.parametrize("kind", list(BAD_RULES))
def test_bad_rules_raise_rules_error_never_panic(tmp_path: Path, kind: str) -> None:
    text = BAD_RULES[kind]
    path = tmp_path / "rules.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(redisprep.RulesError) as info:
        Rules.load(path)
    assert isinstance(info.value, ValueError)
    assert len(str(info.value)) < 5000
    if isinstance(text, str):
        with pytest.raises(redisprep.RulesError):
            Rules.from_json(text)


def test_runtime_keeps_the_last_good_rules(
    tmp_path: Path,
    run_dir: Path,
    r0: redis.Redis[str],
    c13: redis.Redis[str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("REDISPREP_RULES_RELOAD_INTERVAL", "0")
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(RULES))
    redisprep.set_rules_path(path)
    prep = RedisPrep.getInstance(str(run_dir))
    key = f"{run_dir}/climate.nodb"
    c13.set(key, "cached")
    prep.timestamp(TaskEnum.build_climate)
    assert c13.exists(key) == 0
    good_source = redisprep.active_rules().source  # type: ignore[union-attr]

    caplog.set_level(logging.WARNING, logger="redisprep")
    for kind, text in BAD_RULES.items():
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        c13.set(key, "cached")
        r0.hdel("abc-def", "timestamps:build_climate")
        prep.timestamp(TaskEnum.build_climate)  # never raises on bad rules
        assert r0.hexists("abc-def", "timestamps:build_climate"), kind
        assert c13.exists(key) == 0, f"{kind}: the last good rules were dropped"
        active = redisprep.active_rules()
        assert active is not None and active.source == good_source
        assert active.controllers == ["climate"]
    assert read_dump(run_dir) == redis_hash(r0, "abc-def")
    warnings = [r for r in caplog.records if "keeping the last good rules" in r.getMessage()]
    assert warnings, "no warning was logged for an invalid rules file"

    # a valid change is picked up again
    reloads = redisprep.stats()["rules_reloads"]
    fixed = json.loads(json.dumps(RULES))
    fixed["controllers"]["climate"]["keys"] = ["{wd}/climate2.nodb"]
    path.write_text(json.dumps(fixed))
    c13.set(f"{run_dir}/climate2.nodb", "cached")
    c13.set(key, "cached")
    prep.timestamp(TaskEnum.build_climate)
    assert c13.exists(f"{run_dir}/climate2.nodb") == 0
    assert c13.get(key) == "cached"
    assert redisprep.stats()["rules_reloads"] == reloads + 1


def test_invalid_rules_from_the_start_still_record_timestamps(
    tmp_path: Path, run_dir: Path, r0: redis.Redis[str], c13: redis.Redis[str]
) -> None:
    path = tmp_path / "rules.json"
    path.write_text("{ not json")
    redisprep.set_rules_path(path)
    prep = RedisPrep.getInstance(str(run_dir))
    c13.set(f"{run_dir}/climate.nodb", "cached")
    prep.timestamp(TaskEnum.build_climate)
    assert r0.hexists("abc-def", "timestamps:build_climate")
    assert c13.get(f"{run_dir}/climate.nodb") == "cached"  # invalidation skipped
    assert redisprep.active_rules() is None
    with pytest.raises(redisprep.ConfigError):
        prep.explain(TaskEnum.build_climate)
