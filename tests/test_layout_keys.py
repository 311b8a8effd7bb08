"""The key layout has one owner, the core: Python (the audit, migrate-layout,
the test helpers) asks it for every key, and what it is told is what the
write path puts in Redis, on hostile run ids (braces, colons, unicode).

The literal bytes of the cluster layout are pinned here too (they must never
change: deployed clusters hold these keys)."""

from __future__ import annotations

from pathlib import Path

import pytest

import redisprep
from redisprep import RedisPrep, TaskEnum, _redisprep
from redisprep.audit import Auditor
from support.layouts import Layout

HOSTILE = ["a{b}", "{", "}", "}{x", "a:b", ":", "prep:{x}", "é中", "a}:b", "_", "x y"]

# run id -> (cluster hash key, cluster cache key of "/f") as deployed clusters hold them
CLUSTER_BYTES = {
    "abc-def": ("prep:{abc-def}", "nodb:{abc-def}:/f"),
    "a{b}": ("prep:{a(b)}:a{b}", "nodb:{a(b)}:/f"),
    "}{x": ("prep:{)(x}:}{x", "nodb:{)(x}:/f"),
    "a:b": ("prep:{a:b}", "nodb:{a:b}:/f"),
    "é中": ("prep:{é中}", "nodb:{é中}:/f"),
    "": ("prep:{_}:", "nodb:{_}:/f"),
}


@pytest.mark.parametrize("run_id", sorted(CLUSTER_BYTES))
def test_the_cluster_key_bytes_do_not_change(run_id: str) -> None:
    hash_key, cache_key = CLUSTER_BYTES[run_id]
    assert _redisprep.hash_key(run_id, layout="cluster") == hash_key
    assert _redisprep.cache_key(run_id, "/f", layout="cluster") == cache_key
    assert _redisprep.run_id_of_hash_key(hash_key, layout="cluster") == run_id
    assert _redisprep.hash_key(run_id, layout="standalone") == run_id
    assert _redisprep.cache_key(run_id, "/f", layout="standalone") == "/f"


def test_keys_of_other_shapes_are_not_run_hashes() -> None:
    for key in ["nodb:{a}:/f", "prep:{a", "prep:{a}x", "prep:a", "plain"]:
        assert _redisprep.run_id_of_hash_key(key, layout="cluster") is None, key
    assert _redisprep.hash_key_pattern(layout="cluster") == "prep:{*"
    assert _redisprep.hash_key_pattern(layout="standalone") == "*"


def test_an_unknown_layout_is_a_config_error() -> None:
    with pytest.raises(redisprep.ConfigError, match="unknown layout"):
        _redisprep.hash_key("x", layout="Cluster")  # type: ignore[arg-type]


def test_python_names_the_keys_the_core_writes(layout: Layout, tmp_path: Path) -> None:
    """For each hostile run id: the hash the write path created is the one
    ``hash_key`` names (and maps back to the run id); the cache keys the
    audit computes are those ``timestamp()`` deletes."""
    r = layout.client(0)
    r13 = layout.client(redisprep.active_rules().db)  # type: ignore[union-attr]
    auditor = Auditor()
    try:
        for run_id in HOSTILE:
            wd = tmp_path / "runs" / run_id
            wd.mkdir(parents=True)
            prep = RedisPrep.getInstance(str(wd))
            assert _redisprep.hash_key(run_id) == prep.hash_key
            assert r.hget(prep.hash_key, "attrs:loaded") == "true", run_id
            assert _redisprep.run_id_of_hash_key(prep.hash_key) == run_id
            audited = {e.key for e in auditor.entries_of(str(wd), run_id)}
            planned = {k for p in prep.explain(TaskEnum.build_climate) for k in p["keys"]}
            assert planned and planned <= audited, run_id
            for key in audited:
                r13.set(key, "cached")
            prep.timestamp(TaskEnum.build_climate)
            for key in audited:
                assert r13.exists(key) == (key not in planned), (run_id, key)
    finally:
        auditor.close()
