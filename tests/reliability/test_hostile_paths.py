"""Hostile run folders and dump files: NUL bytes, non-UTF-8, huge keys, ``..``
in ``wd``, a dump that is a symlink, a device or a FIFO. A clear exception
or legacy's own behaviour; never a hang, never a write outside the run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import redis

import redisprep
from redisprep import RedisPrep, TaskEnum
from support.legacy_ref import LegacyRedisPrep

from .conftest import HANG_BOUND, read_dump, redis_hash, run_in_child, timed


def legacy_bytes(h: dict[str, str]) -> bytes:
    """What legacy's ``json.dump`` writes for this hash."""
    return json.dumps(h).encode()


def test_nul_bytes(run_dir: Path, r0: redis.Redis[str]) -> None:
    # in the folder name: refused before Redis is touched
    for wd in (f"{run_dir}/\x00x", f"{run_dir.parent}/a\x00b"):
        with pytest.raises(redisprep.DumpError) as info:
            RedisPrep.getInstance(wd)
        assert "NUL" in str(info.value)
    assert r0.dbsize() == 0
    # in a task or a value: Redis is binary-safe, so stored exactly, like legacy
    prep = RedisPrep.getInstance(str(run_dir))
    prep.timestamp("a\x00b")
    prep.set_rq_job_id("x\x00y", "job\x00id")
    h = redis_hash(r0, "abc-def")
    assert h["rq:x\x00y"] == "job\x00id" and "timestamps:a\x00b" in h
    assert (run_dir / "redisprep.dump").read_bytes() == legacy_bytes(h)
    r0.delete("abc-def")  # lost: recovered from the dump with the same bytes
    assert RedisPrep.getInstance(str(run_dir)).get_rq_job_id("x\x00y") == "job\x00id"
    assert redis_hash(r0, "abc-def") == h


def test_non_utf8_key_is_refused_and_nothing_is_written(
    run_dir: Path, r0: redis.Redis[str]
) -> None:
    prep = RedisPrep.getInstance(str(run_dir))
    prep.timestamp(TaskEnum.build_soils)
    before = (r0.hgetall("abc-def"), (run_dir / "redisprep.dump").read_bytes())
    for call in (
        lambda: prep.timestamp("\udcff"),  # os.fsdecode of a non-UTF-8 byte
        lambda: prep.set_rq_job_id("build_soils_rq", "\ud800job"),
        lambda: prep["\udcff"],
    ):
        with pytest.raises(ValueError):  # UnicodeEncodeError
            call()
    assert (r0.hgetall("abc-def"), (run_dir / "redisprep.dump").read_bytes()) == before


def test_huge_key_and_value_round_trip(run_dir: Path, r0: redis.Redis[str]) -> None:
    task, job = "t" * (1 << 20), "j" * (4 << 20)
    prep = RedisPrep.getInstance(str(run_dir))
    prep.timestamp(task)
    prep.set_rq_job_id("big", job)
    h = redis_hash(r0, "abc-def")
    assert len(h[f"timestamps:{task}"]) == 10 and h["rq:big"] == job
    assert (run_dir / "redisprep.dump").read_bytes() == legacy_bytes(h)
    r0.delete("abc-def")
    again = RedisPrep.getInstance(str(run_dir))
    assert again[task] == prep[task] and again.get_rq_job_id("big") == job


def test_dot_dot_in_wd_behaves_like_legacy_and_reaches_no_other_run(
    tmp_path: Path, r0: redis.Redis[str]
) -> None:
    root = tmp_path / "runs"
    abc, deff = root / "abc", root / "def"
    abc.mkdir(parents=True)
    deff.mkdir()
    RedisPrep.getInstance(str(abc)).timestamp(TaskEnum.build_soils)
    abc_state = (r0.hgetall("abc"), (abc / "redisprep.dump").read_bytes())

    # ``abc/../def`` is run ``def``: its hash, its folder
    via = RedisPrep.getInstance(f"{abc}/../def")
    via.timestamp(TaskEnum.build_climate)
    assert via.run_id == "def"
    assert read_dump(deff) == redis_hash(r0, "def")
    assert RedisPrep.getInstance(str(deff))[TaskEnum.build_climate] is not None

    # ``abc/..``: legacy takes ``..`` as the run id and writes the dump in the
    # parent folder; the drop-in does exactly the same (documented)
    for cls in (RedisPrep, LegacyRedisPrep):
        wd = f"{abc}/.."
        prep = RedisPrep.getInstance(wd) if cls is RedisPrep else LegacyRedisPrep(wd, r0)
        assert prep.run_id == ".."
        assert prep.dump_filepath == os.path.join(wd, "redisprep.dump")
    assert (abc_state[0], (abc / "redisprep.dump").read_bytes()) == (
        r0.hgetall("abc"),
        abc_state[1],
    )
    # run ids from outside never walk the tree
    for rid in ("..", ".", "", "a/../b", "../etc"):
        with pytest.raises(redisprep.ResolverError):
            RedisPrep.getInstanceFromRunID(rid)


def test_dump_symlinked_outside_the_run_is_replaced_not_followed(
    tmp_path: Path, run_dir: Path, r0: redis.Redis[str]
) -> None:
    victim = tmp_path / "victim.dump"
    victim_bytes = b'{"attrs:loaded": "true", "timestamps:build_climate": "1700000000"}'
    victim.write_bytes(victim_bytes)
    (run_dir / "redisprep.dump").symlink_to(victim)
    # reading follows the link, as legacy's open() does...
    prep = RedisPrep.getInstance(str(run_dir))
    assert prep[TaskEnum.build_climate] == 1700000000
    # ...but a write replaces the link with a regular file: the target is never written
    prep.timestamp(TaskEnum.build_soils)
    assert not (run_dir / "redisprep.dump").is_symlink()
    assert victim.read_bytes() == victim_bytes
    assert read_dump(run_dir) == redis_hash(r0, "abc-def")


@pytest.mark.parametrize("kind", ["dev-zero", "fifo", "symlink-loop"])
def test_dump_that_is_not_a_regular_file(run_dir: Path, r0: redis.Redis[str], kind: str) -> None:
    """``/dev/zero`` never ends (reading it would exhaust memory) and opening a
    FIFO waits for a writer: both must fail at once."""
    dump = run_dir / "redisprep.dump"
    if kind == "dev-zero":
        dump.symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(dump)
    else:
        dump.symlink_to(dump)  # ELOOP

    def load() -> dict[str, object]:
        took, err = timed(lambda: RedisPrep.getInstance(str(run_dir)))
        return {"took": took, "error": type(err).__name__, "message": str(err)}

    status, out = run_in_child(load, timeout=HANG_BOUND * 2)  # a hang kills the child
    assert status == 0, out
    expected = "DumpFormatError" if kind != "symlink-loop" else "DumpError"
    assert out["error"] == expected, out
    assert str(dump) in out["message"]
    assert out["took"] < HANG_BOUND
    if kind != "symlink-loop":
        assert r0.exists("abc-def") == 0
        return
    # a dangling link counts as "no dump" (legacy: os.path.exists() is False),
    # so attrs:loaded was set; the next write replaces the link with a real dump
    RedisPrep.__new__(RedisPrep, str(run_dir)).timestamp(TaskEnum.build_soils)
    assert not dump.is_symlink()
    assert read_dump(run_dir) == redis_hash(r0, "abc-def")
