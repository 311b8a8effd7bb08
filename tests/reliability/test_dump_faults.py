"""The dump cannot be written: a clear ``DumpError``; Redis state and the
previous dump file intact; the next successful call writes a complete dump.

Tests run as root here, where ``chmod 0o555`` is not enforced, so each
failure is made in a way that also stops root: the immutable attribute, a
directory where the dump file should be, a run "folder" that is a file, and
the folder removed while a call waits for the run's lock."""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import threading
from pathlib import Path

import pytest
import redis

import redisprep
from redisprep import RedisPrep, TaskEnum

from .conftest import read_dump, redis_hash, temp_files, unwritable, wait_until


def stamped(run_dir: Path) -> tuple[RedisPrep, bytes]:
    """A run with a dump holding two fields; returns the prep and the dump bytes."""
    prep = RedisPrep.getInstance(str(run_dir))
    prep.timestamp(TaskEnum.build_channels)
    prep.set_rq_job_id("build_channels_rq", "job-7")
    return prep, (run_dir / "redisprep.dump").read_bytes()


def test_read_only_folder(run_dir: Path, r0: redis.Redis[str]) -> None:
    prep, before = stamped(run_dir)
    with unwritable(run_dir) as how:
        with pytest.raises(redisprep.DumpError) as info:
            prep.timestamp(TaskEnum.build_climate)
        err = info.value
        assert isinstance(err, OSError)
        assert err.errno in (errno.EPERM, errno.EACCES), (how, err)
        assert err.filename == str(run_dir / "redisprep.dump")
        assert "create temp file" in str(err)
        assert (run_dir / "redisprep.dump").read_bytes() == before  # previous dump intact
        assert temp_files(run_dir) == []
        # Redis holds the change (it is the source of truth); nothing else moved
        h = redis_hash(r0, "abc-def")
        assert "timestamps:build_climate" in h
        assert h["rq:build_channels_rq"] == "job-7"
        assert {k: v for k, v in h.items() if k != "timestamps:build_climate"} == read_dump(run_dir)
        # reads keep working while the folder is read-only
        assert prep[TaskEnum.build_climate] is not None
    prep.timestamp(TaskEnum.build_soils)  # writable again: a complete dump
    final = read_dump(run_dir)
    assert final == redis_hash(r0, "abc-def")
    assert "timestamps:build_climate" in final


def test_dump_path_is_a_directory(run_dir: Path, r0: redis.Redis[str]) -> None:
    prep = RedisPrep.getInstance(str(run_dir))
    (run_dir / "redisprep.dump").unlink()
    (run_dir / "redisprep.dump").mkdir()
    with pytest.raises(redisprep.DumpError) as info:
        prep.timestamp(TaskEnum.build_climate)
    assert info.value.errno == errno.EISDIR
    assert "rename" in str(info.value)
    assert temp_files(run_dir) == []
    assert "timestamps:build_climate" in r0.hgetall("abc-def")
    (run_dir / "redisprep.dump").rmdir()
    prep.timestamp(TaskEnum.build_soils)
    assert read_dump(run_dir) == redis_hash(r0, "abc-def")
    assert {"timestamps:build_climate", "timestamps:build_soils"} <= set(read_dump(run_dir))


def test_run_folder_is_a_file(tmp_path: Path, r0: redis.Redis[str]) -> None:
    """Legacy's ``open(<wd>/redisprep.dump, 'w')`` raises NotADirectoryError here;
    ours raises DumpError (ENOTDIR) before touching Redis."""
    wd = tmp_path / "not-a-folder"
    wd.write_text("x")
    with pytest.raises(redisprep.DumpError) as info:
        RedisPrep(str(wd))
    assert info.value.errno == errno.ENOTDIR
    assert r0.exists("not-a-folder") == 0
    assert wd.read_text() == "x"


def test_folder_deleted_while_a_call_waits_for_the_run_lock(
    run_dir: Path, r0: redis.Redis[str]
) -> None:
    prep, _ = stamped(run_dir)
    # Hold the run's lock (the same flock redisprep takes) from this test.
    fd = os.open(run_dir, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    result: dict[str, BaseException | None] = {}

    def call() -> None:
        try:
            prep.timestamp(TaskEnum.build_climate)
            result["err"] = None
        except BaseException as e:
            result["err"] = e

    worker = threading.Thread(target=call)
    try:
        worker.start()
        # the worker has opened the folder and is blocked on its lock
        wait_until(lambda: _waiting_for_lock(run_dir), deadline=10)
        shutil.rmtree(run_dir)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
        worker.join(30)
    err = result["err"]
    assert isinstance(err, redisprep.DumpError), repr(err)
    assert err.errno == errno.ENOENT
    assert "timestamps:build_climate" in r0.hgetall("abc-def")  # Redis applied it
    # The folder is gone: calls work and write nothing (legacy: no folder, no dump).
    prep.timestamp(TaskEnum.build_soils)
    assert not run_dir.exists()
    # The folder comes back: the next call writes a complete dump.
    run_dir.mkdir()
    prep.timestamp(TaskEnum.build_landuse)
    dump = read_dump(run_dir)
    assert dump == redis_hash(r0, "abc-def")
    assert {
        "timestamps:build_channels",
        "timestamps:build_climate",
        "timestamps:build_soils",
    } <= set(dump)


def _waiting_for_lock(folder: Path) -> bool:
    """True once some process waits for the flock on ``folder`` (a ``->`` line in /proc/locks)."""
    inode = f":{folder.stat().st_ino} "
    with open("/proc/locks") as fp:
        return any("->" in line and "FLOCK" in line and inode in line for line in fp)
