"""Drop-in behaviour (issue 3): redisprep's ``RedisPrep`` against the pure-Python
legacy reference (``support.legacy_ref``, written from legacy's layout, dump and class surface).

The same calls go to both; after every call the run's hash (``HGETALL``, in
order) and the ``redisprep.dump`` bytes must be identical, and readers must
return the same values. The legacy reference always runs on wepppy's layout
(the session server, DB 1, so it never shares a key with ours); ours runs on
each layout of the ``layout`` fixture (standalone, then the Redis Cluster).

Timestamps: ours has no ``now`` argument, so ``timestamp()`` runs on ours
first, the value it stored is read back (and checked to lie between
``int(time.time())`` before and after the call), and the legacy reference
records that same value with ``timestamp(key, now=value)``.

The harness (the pair, the readers, the scripted and random operations) is
``support.dropin``.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import shutil
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import redisprep
from redisprep import InvalidKeyError, RedisPrep, RedisPrepError, ResolverError, TaskEnum
from support.dropin import (
    BAD_KEYS,
    KEYED,
    LEGACY_DB,
    ODD,
    OPS,
    READ_KEYS,
    SCRIPT,
    TASK_TABLE,
    AppTaskEnum,
    Pair,
    WeppTaskEnum,
    apply_op,
    raw_write,
    write_rich_state,
)
from support.layouts import Layout
from support.legacy_ref import LegacyRedisPrep


@pytest.fixture
def legacy_client(redis_info: Any) -> redis.Redis[str]:
    """The legacy reference's Redis: the session server, DB 1 (flushed before each test)."""
    return redis_info.client(LEGACY_DB)  # type: ignore[no-any-return]


@pytest.fixture(params=["bundled", "app"])
def task_list(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[type[Enum]]:
    """Every drop-in test runs with our bundled TaskEnum and with an application's
    own (``AppTaskEnum``: members ours lacks, another order) installed by
    ``set_task_enum`` on ours and iterated by the legacy reference."""
    if request.param == "app":
        redisprep.set_task_enum(AppTaskEnum)
        monkeypatch.setattr(LegacyRedisPrep, "task_enum", AppTaskEnum)
    try:
        yield redisprep.task_enum()
    finally:
        redisprep.set_task_enum(None)


@pytest.fixture
def pair(
    layout: Layout, legacy_client: redis.Redis[str], tmp_path: Path, task_list: type[Enum]
) -> Pair:
    return Pair(layout, legacy_client, tmp_path, "abc-def")


def test_scripted_sequence_is_byte_identical(pair: Pair, task_list: type[Enum]) -> None:
    pair.open()
    pair.check_state("getInstance")
    pair.check_readers(READ_KEYS)
    for i, (what, fn) in enumerate(SCRIPT):
        pair.step(fn, what)
        pair.check_readers(READ_KEYS)
        if i % 9 == 4:
            pair.timestamp([TaskEnum.build_soils, WeppTaskEnum.run_geneva, "x", ODD][i % 4])
            pair.check_readers(READ_KEYS)
    ours = pair.sides[1]
    # locked:* stays in Redis and never reaches the dump; other fields do
    assert ("locked:climate.nodb", "true") in ours.hash_items()
    dumped = json.loads(ours.dump_bytes() or b"")
    assert "locked:climate.nodb" not in dumped
    assert dumped["postfire_debris_flow:revision"] == "3"
    # remove_all_timestamp kept timestamps of tasks that are not members of the task list
    assert f"timestamps:{ODD}" in dumped
    assert ("timestamps:run_sediment_budget" in dumped) is (task_list is TaskEnum)
    assert not any(f"timestamps:{t}" in dumped for t in task_list)


def test_timestamp_records_the_same_bytes_with_every_key_form(pair: Pair) -> None:
    pair.open()
    for key in [TaskEnum.fetch_rap_ts, WeppTaskEnum.fetch_rap_ts, "build_rap_ts"]:
        pair.timestamp(key)
        ours = pair.sides[1]
        assert ours.raw.hget(ours.key, "timestamps:build_rap_ts") is not None
        assert [f for f, _ in ours.hash_items() if f.startswith("timestamps:")] == [
            "timestamps:build_rap_ts"
        ]


@pytest.mark.parametrize("key", [TaskEnum.fetch_rap_ts, WeppTaskEnum.fetch_rap_ts, "build_rap_ts"])
def test_every_key_form_names_the_same_field(pair: Pair, key: Any) -> None:
    pair.open()
    ours = pair.sides[1]
    ours.prep[key] = 11
    ours.prep.set_rq_job_id(key, "j")
    ours.prep._set_bool_config(key, True)
    fields = dict(ours.hash_items())
    assert fields["timestamps:build_rap_ts"] == "11"
    assert fields["rq:build_rap_ts"] == "j"
    assert fields["attrs:build_rap_ts"] == "true"
    for other in [TaskEnum.fetch_rap_ts, WeppTaskEnum.fetch_rap_ts, "build_rap_ts"]:
        assert ours.prep[other] == 11
        assert ours.prep.get_rq_job_id(other) == "j"
        assert ours.prep._get_bool_config(other) is True
    ours.prep.remove_timestamp(key)
    assert ours.prep[TaskEnum.fetch_rap_ts] is None


@pytest.mark.parametrize("method", sorted(KEYED))
def test_bad_keys_raise_invalid_key_error_and_write_nothing(pair: Pair, method: str) -> None:
    pair.open()
    _, ours = pair.sides
    ours.prep[TaskEnum.build_climate] = 1
    before = (ours.hash_items(), ours.dump_bytes())
    for bad in BAD_KEYS:
        with pytest.raises(InvalidKeyError) as info:
            KEYED[method](ours.prep, bad)
        assert isinstance(info.value, RedisPrepError) and isinstance(info.value, TypeError)
        assert type(bad).__name__ in str(info.value)
        assert (ours.hash_items(), ours.dump_bytes()) == before


@pytest.mark.parametrize("bad", [None, True, [1], {"a": 1}, b"\xff"], ids=repr)
def test_bad_values_are_refused_like_redis_py_and_write_nothing(pair: Pair, bad: Any) -> None:
    pair.open()
    legacy, ours = pair.sides
    before = (ours.hash_items(), ours.dump_bytes())
    for call in [
        lambda p: p.__setitem__("x", bad),
        lambda p: p.set_rq_job_id("x", bad),
        lambda p: p.set_archive_job_id(bad),
    ]:
        with pytest.raises(InvalidKeyError):
            call(ours.prep)
        assert (ours.hash_items(), ours.dump_bytes()) == before
        if not isinstance(bad, bytes):  # redis-py stores any bytes; ours needs UTF-8 text
            with pytest.raises(redis.DataError):
                call(legacy.prep)


# -- dumps: both directions ---------------------------------------------------


@pytest.mark.parametrize("writer", ["legacy", "ours"])
def test_a_dump_loads_in_the_other_implementation(pair: Pair, writer: str) -> None:
    pair.open()
    src, dst = pair.sides if writer == "legacy" else pair.sides[::-1]
    write_rich_state(src)
    data = src.dump_bytes()
    assert data is not None and b"locked:" not in data
    # Redis lost everything (restart); the reader finds only the file the other wrote
    (dst.folder / "redisprep.dump").write_bytes(data)
    for side in pair.sides:
        side.raw.delete(side.key)
    pair.open()
    pair.check_state(f"{writer} dump loaded by both")
    assert dst.dump_bytes() == data  # lazy_load does not re-dump
    assert dict(pair.sides[1].hash_items())["attrs:loaded"] == "true"
    pair.check_readers(READ_KEYS)


def test_lazy_load_merges_over_fields_already_in_redis(pair: Pair) -> None:
    pair.open()
    for side in pair.sides:
        side.prep["a"] = 1
        side.prep.set_rq_job_id("r", "1")
        side.raw.hset(side.key, mapping={"attrs:loaded": "false", "extra": "x", "rq:r": "2"})
    pair.check_state()
    for side in pair.sides:
        side.prep.lazy_load()
    pair.check_state("lazy_load over a partial hash")
    ours = pair.sides[1]
    assert dict(ours.hash_items())["rq:r"] == "1"  # the dump wins for the fields it has
    assert dict(ours.hash_items())["extra"] == "x"  # fields only in Redis stay


def test_lazy_load_does_nothing_when_loaded(pair: Pair) -> None:
    pair.open()
    for side in pair.sides:
        side.prep["a"] = 1
        # a dump that differs from Redis: lazy_load must not read it while loaded is true
        (side.folder / "redisprep.dump").write_text('{"timestamps:a": "99", "z": "1"}')
    for loaded in ["true", "TRUE", "True"]:
        for side in pair.sides:
            side.raw.hset(side.key, "attrs:loaded", loaded)
            side.prep.lazy_load()
            assert side.prep["a"] == 1
        pair.check_state(f"loaded={loaded}")
    for side in pair.sides:
        side.raw.hset(side.key, "attrs:loaded", "yes")  # not 'true': loads
        side.prep.lazy_load()
        assert side.prep["a"] == 99
    pair.check_state("loaded=yes")


def test_constructor_sets_loaded_only_without_a_dump(pair: Pair) -> None:
    pair.open(construct_only=True)
    pair.check_state("constructor, no dump")
    legacy, ours = pair.sides
    assert ours.hash_items() == [("attrs:loaded", "true")]
    assert ours.dump_bytes() == b'{"attrs:loaded": "true"}'
    for side in pair.sides:
        side.raw.delete(side.key)
    pair.open(construct_only=True)  # the dump exists now: the constructor writes nothing
    assert ours.hash_items() == [] and legacy.hash_items() == []
    pair.check_state("constructor, dump present")


def test_new_alone_touches_neither_redis_nor_the_disk(layout: Layout, tmp_path: Path) -> None:
    """``RedisPrep.__new__`` builds an instance without legacy's constructor side
    effect (what the read-only paths use); ``__init__`` adds it."""
    wd = tmp_path / "quiet"
    wd.mkdir()
    prep = RedisPrep.__new__(RedisPrep, str(wd))
    r = layout.client(0)
    assert r.exists(prep.hash_key) == 0 and not (wd / "redisprep.dump").exists()
    assert prep["build_climate"] is None  # and it works (a read)
    assert r.exists(prep.hash_key) == 0
    prep.__init__(str(wd))  # type: ignore[misc]
    assert r.hgetall(prep.hash_key) == {"attrs:loaded": "true"}
    assert (wd / "redisprep.dump").read_bytes() == b'{"attrs:loaded": "true"}'


def test_missing_folder_writes_redis_but_no_file(
    layout: Layout, legacy_client: redis.Redis[str], tmp_path: Path
) -> None:
    pair = Pair(layout, legacy_client, tmp_path, "gone")
    shutil.rmtree(pair.legacy_dir)
    shutil.rmtree(pair.ours_dir)
    pair.open()
    for what, fn in SCRIPT[:12]:
        pair.step(fn, what)
    pair.timestamp(TaskEnum.build_climate)
    ours = pair.sides[1]
    assert ours.dump_bytes() is None and not pair.ours_dir.exists()
    assert len(ours.hash_items()) > 5


@pytest.mark.parametrize("suffix", ["/", "//"])
def test_run_id_and_paths_of_a_wd_with_trailing_slashes(
    layout: Layout, legacy_client: redis.Redis[str], tmp_path: Path, suffix: str
) -> None:
    run = tmp_path / "runs" / "ab" / "abc-def"
    run.mkdir(parents=True)
    wd = str(run) + suffix
    legacy = LegacyRedisPrep.getInstance(wd, legacy_client)
    ours = RedisPrep.getInstance(wd, allow_nonexistent=True, ignore_lock=True)
    assert (ours.wd, ours.run_id, ours.dump_filepath, ours.cfg_fn) == (
        legacy.wd,
        legacy.run_id,
        legacy.dump_filepath,
        None,
    )
    assert ours.run_id == "abc-def" and ours.wd == wd
    assert ours.dump_filepath == os.path.join(wd, "redisprep.dump")
    assert layout.client(0).hgetall(layout.hash_key("abc-def")) == {"attrs:loaded": "true"}


def test_default_wd_is_the_current_folder(
    layout: Layout, legacy_client: redis.Redis[str], tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    ours = RedisPrep.getInstance()
    legacy = LegacyRedisPrep.getInstance(".", legacy_client)
    assert (ours.wd, ours.run_id, ours.dump_filepath) == (".", ".", "./redisprep.dump")
    assert ours.timestamps_report() == legacy.timestamps_report()
    assert ours.timestamps_report().startswith("RedisPrep Timestamps (.):\n  rmtree: None\n")
    assert (tmp_path / "redisprep.dump").read_bytes() == b'{"attrs:loaded": "true"}'
    assert layout.client(0).hget(layout.hash_key("."), "attrs:loaded") == "true"


def test_int_of_stored_values_follows_python(pair: Pair) -> None:
    pair.open()
    values = [" 7 ", "1_0", "-3", "+4", "0010", "10" * 20, "abc", "1.5", "", "٣"]
    for i, v in enumerate(values):
        pair.step(raw_write(f"timestamps:v{i}", v))
    pair.check_readers([f"v{i}" for i in range(len(values))])
    _, ours = pair.sides
    assert ours.prep["v0"] == 7 and ours.prep["v1"] == 10 and ours.prep["v9"] == 3
    assert ours.prep["v5"] == int("10" * 20)
    with pytest.raises(ValueError):
        ours.prep["v6"]


def test_timestamps_report_lists_every_member_in_order(pair: Pair, task_list: type[Enum]) -> None:
    pair.open()
    for side in pair.sides:
        side.prep[TaskEnum.fetch_polaris] = 5
        side.prep["run_sediment_budget"] = 6  # a member of the app's list only
        side.prep["not_a_task"] = 7  # not a member: not in the report
        side.raw.hset(side.key, "timestamps:build_soils", "raw text")
    _, ours = pair.sides
    report = ours.prep.timestamps_report()
    lines = report.split("\n")
    assert lines[0] == "RedisPrep Timestamps (abc-def):"
    stored = {"build_polaris": "5", "build_soils": "raw text", "run_sediment_budget": "6"}
    assert lines[1:] == [f"  {t.value}: " + stored.get(t.value, "None") for t in task_list]
    assert ("run_sediment_budget" in report) is (task_list is AppTaskEnum)
    pair.check_readers([])


# -- getInstance & co ---------------------------------------------------------


def test_get_instance_flags_are_accepted_and_ignored(pair: Pair) -> None:
    pair.open()
    _, ours = pair.sides
    ours.prep["a"] = 1
    state = (ours.hash_items(), ours.dump_bytes())
    for kw in [{}, {"allow_nonexistent": True}, {"ignore_lock": True}]:
        p = RedisPrep.getInstance(str(pair.ours_dir), **kw)
        assert isinstance(p, RedisPrep) and p["a"] == 1
        q = RedisPrep.tryGetInstance(str(pair.ours_dir), **kw)
        assert isinstance(q, RedisPrep) and q["a"] == 1
        assert (ours.hash_items(), ours.dump_bytes()) == state


def test_get_instance_shares_one_connection_pool(pair: Pair) -> None:
    pair.open()
    assert RedisPrep.getInstance(str(pair.ours_dir))["a"] is None  # warms the pool
    before = redisprep.stats()["connects"]
    for _ in range(20):
        p = RedisPrep.getInstance(str(pair.ours_dir))
        p["a"] = 1
    assert redisprep.stats()["connects"] == before


def test_try_get_instance_on_a_missing_folder_is_an_instance(
    layout: Layout, tmp_path: Path
) -> None:
    p = RedisPrep.tryGetInstance(str(tmp_path / "nope" / "run-x"))
    assert isinstance(p, RedisPrep) and p.run_id == "run-x"
    assert layout.client(0).hgetall(layout.hash_key("run-x")) == {"attrs:loaded": "true"}


def test_try_get_instance_maps_file_not_found_to_none(
    layout: Layout, run_dir: Path, monkeypatch: Any
) -> None:
    (run_dir / "redisprep.dump").write_text("[1, 2]")  # a real error that is not FileNotFound
    with pytest.raises(redisprep.DumpFormatError):
        RedisPrep.tryGetInstance(str(run_dir))

    def missing(*a: Any, **kw: Any) -> RedisPrep:
        raise FileNotFoundError(str(run_dir))

    monkeypatch.setattr(RedisPrep, "getInstance", staticmethod(missing))
    assert RedisPrep.tryGetInstance(str(run_dir)) is None


def test_get_instance_from_run_id(
    layout: Layout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import redisprep.config as config

    monkeypatch.setattr(config, "_resolver", None)
    monkeypatch.setattr(config, "_runs_root", None)
    monkeypatch.delenv("REDISPREP_RUNS_ROOT", raising=False)
    with pytest.raises(ResolverError, match="no run resolver is configured") as info:
        RedisPrep.getInstanceFromRunID("abc-def")
    assert isinstance(info.value, RedisPrepError) and isinstance(info.value, LookupError)
    assert layout.client(0).keys("*") == []

    root = tmp_path / "env-root"
    (root / "abc-def").mkdir(parents=True)
    monkeypatch.setenv("REDISPREP_RUNS_ROOT", str(root))
    p = RedisPrep.getInstanceFromRunID("abc-def", allow_nonexistent=True, ignore_lock=True)
    assert p.wd == str(root / "abc-def") and (root / "abc-def" / "redisprep.dump").exists()

    other = tmp_path / "configured-root"
    (other / "abc-def").mkdir(parents=True)
    redisprep.configure(layout.url, runs_root=str(other))  # wins over the environment
    assert RedisPrep.getInstanceFromRunID("abc-def").wd == str(other / "abc-def")

    seen: list[str] = []

    def get_wd(runid: str) -> str:
        seen.append(runid)
        return str(tmp_path / "resolved" / runid[:2] / runid)

    redisprep.set_run_resolver(get_wd)  # wins over runs_root
    p = RedisPrep.getInstanceFromRunID("abc-def")
    assert seen == ["abc-def"] and p.wd == str(tmp_path / "resolved" / "ab" / "abc-def")
    for bad in ["", "a/b", "..", ".", None]:
        with pytest.raises(ResolverError):
            RedisPrep.getInstanceFromRunID(bad)  # type: ignore[arg-type]
    assert seen == ["abc-def"]


# -- pickling, prep.redis, TaskEnum --------------------------------------------


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_pickle_round_trip_gives_a_working_instance(
    pair: Pair, protocol: int, legacy_client: redis.Redis[str]
) -> None:
    pair.open()
    ours = pair.sides[1]
    ours.prep.cfg_fn = "disturbed.cfg"
    ours.prep[TaskEnum.build_climate] = 5
    assert ours.prep.__getstate__() == {
        "wd": str(pair.ours_dir),
        "cfg_fn": "disturbed.cfg",
        "run_id": "abc-def",
    }
    data = pickle.dumps(ours.prep, protocol=protocol)
    ours.raw.delete(ours.key)  # unpickling runs no constructor: nothing is written
    clone = pickle.loads(data)
    assert type(clone) is RedisPrep
    assert (clone.wd, clone.cfg_fn, clone.run_id) == (
        str(pair.ours_dir),
        "disturbed.cfg",
        "abc-def",
    )
    assert ours.hash_items() == []
    clone.lazy_load()  # and it works: the dump comes back
    assert clone[TaskEnum.build_climate] == 5
    clone.set_rq_job_id("after", "pickle")
    assert ours.raw.hget(ours.key, "rq:after") == "pickle"


def test_prep_redis_is_a_real_shared_client(pair: Pair) -> None:
    pair.open()
    legacy, ours = pair.sides
    client = ours.prep.redis
    assert isinstance(client, redis.RedisCluster if pair.layout.is_cluster else redis.Redis)
    assert client is RedisPrep.getInstance(str(pair.ours_dir)).redis  # shared per process
    key = ours.prep.hash_key
    assert key == ours.key and (key == ours.prep.run_id) != pair.layout.is_cluster
    assert client.hget(key, "attrs:loaded") == "true"  # decode_responses=True
    # wepppy's pattern: write a field past the class, then dump(); and use a lock
    for side, c in [(legacy, legacy.raw), (ours, client)]:
        c.hset(side.key, "postfire_debris_flow:revision", "2")
        c.hset(side.key, "rq:build_climate_rq", "j")
        side.prep.dump()
        c.hdel(side.key, "rq:build_climate_rq")
        side.prep.dump()
    pair.check_state("writes through prep.redis then dump()")
    if not pair.layout.is_cluster:
        with client.lock(f"{ours.prep.run_id}:debris", timeout=30, blocking_timeout=5):
            assert client.get(f"{ours.prep.run_id}:debris") is not None


@pytest.mark.no_redis
def test_task_enum_is_spec_section_5() -> None:
    rows = [line.split(" | ") for line in TASK_TABLE.strip().splitlines()]
    assert [(t.name, t.value, t.label(), t.emoji()) for t in TaskEnum] == [tuple(r) for r in rows]
    assert sum("\ufe0f" in t.emoji() for t in TaskEnum) == 6
    for t in TaskEnum:
        assert str(t) == f"{t}" == t.value and t.__getstate__() == t.value
        assert pickle.loads(pickle.dumps(t)) is t
        assert TaskEnum(t.value) is t


# -- randomized differential run ----------------------------------------------


def test_random_operation_sequences_match_legacy(
    layout: Layout, legacy_client: redis.Redis[str], tmp_path: Path, task_list: type[Enum]
) -> None:
    counter = iter(range(10**6))

    @settings(
        max_examples=25 if layout.is_cluster else 60,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.lists(OPS, min_size=1, max_size=25), st.randoms(use_true_random=False))
    def run(ops: list[tuple[Any, ...]], rnd: random.Random) -> None:
        pair = Pair(layout, legacy_client, tmp_path, f"run-{next(counter)}")
        pair.open()
        pair.check_state("getInstance")
        keys = [op[1] for op in ops if op[0] in ("set", "timestamp", "rq", "remove")]
        for op in ops:
            apply_op(pair, op)
            pair.check_readers(rnd.sample(keys, min(3, len(keys))))

    run()


def test_layout_helper_names_the_keys_redisprep_uses(layout: Layout, run_dir: Path) -> None:
    """The ``layout`` fixture's key helpers (shared with the invalidation suite) agree
    with what redisprep itself touches on this layout."""
    prep = RedisPrep.getInstance(str(run_dir))
    rules = redisprep.active_rules()
    assert rules is not None
    rendered = [
        k for plan in rules.explain(TaskEnum.build_climate, str(run_dir)) for k in plan["keys"]
    ]
    keys = [k for plan in prep.explain(TaskEnum.build_climate) for k in plan["keys"]]
    assert keys == [layout.cache_key(prep.run_id, k) for k in rendered] and keys
    caches = layout.client(13)
    for k in keys:
        caches.set(k, "cached", ex=3600)
    prep.timestamp(TaskEnum.build_climate)
    assert not any(caches.exists(k) for k in keys)
    assert layout.client(0).hget(layout.hash_key(prep.run_id), "timestamps:build_climate")
