"""``python -m redisprep audit``: real Redis (standalone and cluster), real files.

Every state (stale, orphan, fresh, absent) with its TTL; ``--fix`` deletes only
the stale and orphan entries and leaves every other key and its expiry time
untouched; other runs, including runs whose names are glob characters, are
never read or touched; the JSON validates against the shipped schema; bad
input exits 2 having changed nothing."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import redisprep
from redisprep import Rules
from redisprep.audit import Auditor
from redisprep.cli.audit import main
from support.layouts import Layout
from support.redis_server import free_port

SCHEMA = json.loads((Path(redisprep.__file__).parent / "audit.schema.json").read_text())
CONTROLLERS = len(Rules.load().controllers)
FAR = 4_000_000_000  # an absolute expiry time (EXPIREAT), compared exactly with EXPIRETIME


def _write(wd: Path, name: str, text: str) -> str:
    path = wd / f"{name}.nodb"
    path.write_text(text)
    return str(path)


def _plant(lay: Layout, wd: Path, run_id: str | None = None) -> dict[str, str]:
    """One run with one entry in each state; returns ``{state: key as stored}``."""
    wd.mkdir(parents=True, exist_ok=True)
    rid = run_id or wd.name
    c = lay.client(13)
    fresh = _write(wd, "climate", '{"revision": 1}')
    stale = _write(wd, "landuse", '{"revision": 2, "cover": "forest"}')
    orphan = str(wd / "soils.nodb")  # cached, no file
    _write(wd, "wepp", '{"revision": 0}')  # a file, not cached: absent
    keys = {
        "fresh": lay.cache_key(rid, fresh),
        "stale": lay.cache_key(rid, stale),
        "orphan": lay.cache_key(rid, orphan),
        "absent": lay.cache_key(rid, str(wd / "wepp.nodb")),
    }
    c.set(keys["fresh"], '{"revision": 1}', ex=259200)
    c.set(keys["stale"], '{"revision": 1, "cover": "forest"}')
    c.expireat(keys["stale"], FAR)
    c.set(keys["orphan"], '{"revision": 7}')  # no expiry
    return keys


def _audit(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main([*args, "--format", "json"])
    out = capsys.readouterr().out
    report: dict[str, Any] = json.loads(out)
    jsonschema.Draft202012Validator(SCHEMA).validate(report)
    return code, report


def _by_state(report: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for e in report["entries"]:
        out.setdefault(e["state"], []).append(e)
    return out


# (GET and DEL by execute_command, not EXISTS/delete(): in redis-py 6.x those two
# warn from inside redis-py on a cluster)


def _expiry(lay: Layout, key: str) -> int:
    return int(lay.client(13).execute_command("EXPIRETIME", key))


def test_schema_is_valid() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_every_state_with_its_ttl(
    layout: Layout, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wd = tmp_path / "runs" / "abc-def"
    keys = _plant(layout, wd)
    code, report = _audit(capsys, str(wd))
    assert code == 1
    assert report["layout"] == layout.name and report["runs"] == 1
    assert report["counts"] == {"stale": 1, "orphan": 1, "fresh": 1, "absent": CONTROLLERS - 3}
    states = _by_state(report)
    (stale,) = states["stale"]
    assert stale["key"] == keys["stale"] and stale["controller"] == "landuse"
    assert stale["file"] == str(wd / "landuse.nodb") and stale["run_id"] == "abc-def"
    assert abs(stale["ttl"] - (FAR - time.time())) <= 3
    # '{"revision": 1, ...' vs '{"revision": 2, ...': one byte at offset 13.
    assert (stale["cache_bytes"], stale["file_bytes"]) == (34, 34)
    assert (stale["first_difference"], stale["differing_bytes"]) == (13, 1)
    (orphan,) = states["orphan"]
    assert orphan["key"] == keys["orphan"] and orphan["ttl"] == -1
    assert orphan["file_bytes"] is None and orphan["cache_bytes"] == 15
    (fresh,) = states["fresh"]
    assert fresh["key"] == keys["fresh"] and 259190 <= fresh["ttl"] <= 259200
    absent = {e["key"]: e for e in states["absent"]}
    assert absent[keys["absent"]]["ttl"] is None
    # Every controller in the rules is accounted for, once.
    assert sorted(e["controller"] for e in report["entries"]) == sorted(Rules.load().controllers)

    # The text summary says the same.
    assert main([str(wd)]) == 1
    text = capsys.readouterr().out
    assert "  stale   1\n  orphan  1\n  fresh   1\n" in text
    assert f"{keys['stale']}  (abc-def, landuse): cache 34 B, file 34 B: 1 B differ" in text
    assert f"{keys['orphan']}  (abc-def, soils): cache 15 B, {wd}/soils.nodb is gone" in text
    assert "2 stale or orphan entries" in text


def test_fix_deletes_only_stale_and_orphan(
    layout: Layout, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wd = tmp_path / "runs" / "abc-def"
    keys = _plant(layout, wd)
    c = layout.client(13)
    c.expireat(keys["fresh"], FAR + 5)
    # Another key of this run that is no controller's cache, and another run.
    stray = layout.cache_key("abc-def", str(wd / "not-a-controller.nodb"))
    c.set(stray, "x")
    c.expireat(stray, FAR + 7)
    before = {k: _expiry(layout, k) for k in (keys["fresh"], stray)}
    dump = {k: c.dump(k) for k in (keys["fresh"], stray)}

    code, report = _audit(capsys, str(wd), "--fix")
    assert code == 1  # found (and fixed)
    assert sorted(report["fix"]["deleted"]) == sorted([keys["stale"], keys["orphan"]])
    assert report["fix"]["left"] == []
    assert c.get(keys["stale"]) is None and c.get(keys["orphan"]) is None
    for key, expiry in before.items():
        assert _expiry(layout, key) == expiry
        assert c.dump(key) == dump[key]
    assert c.get(keys["absent"]) is None

    # Printed as deleted; a second audit finds nothing, and exits 0.
    _plant(layout, wd)
    assert main([str(wd), "--fix"]) == 1
    text = capsys.readouterr().out
    assert f"deleted {keys['stale']}\n" in text and f"deleted {keys['orphan']}\n" in text
    assert "fix: deleted 2 entries" in text
    c.execute_command("DEL", keys["fresh"])  # _plant re-set it (DEL: see above)
    code, report = _audit(capsys, str(wd))
    assert code == 0 and report["counts"]["stale"] == report["counts"]["orphan"] == 0


def test_fix_leaves_what_changed_since_it_was_read(layout: Layout, tmp_path: Path) -> None:
    wd = tmp_path / "runs" / "abc-def"
    keys = _plant(layout, wd)
    c = layout.client(13)
    auditor = Auditor()
    try:
        (run,) = list(auditor.audit([str(wd)]))
        assert {e.state for e in run.bad()} == {"stale", "orphan"}
        # A write-through lands between the audit and the fix: the stale entry now
        # holds the file's bytes. The orphan's file comes back.
        c.set(keys["stale"], (wd / "landuse.nodb").read_text())
        (wd / "soils.nodb").write_text('{"revision": 7}')
        result = auditor.fix(run)
    finally:
        auditor.close()
    assert result.deleted == []
    assert sorted(result.left) == sorted([keys["stale"], keys["orphan"]])
    assert c.get(keys["stale"]) == (wd / "landuse.nodb").read_text()
    assert c.get(keys["orphan"]) is not None


GLOBBY = ["r*", "r?", "r[1]", "r\\x", "r1", "rx", "r", "ra{b}"]


def test_other_runs_untouched_including_glob_names(
    layout: Layout, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "runs"
    planted = {name: _plant(layout, root / name) for name in GLOBBY}
    c = layout.client(13)
    snapshot = {
        k: c.dump(k) for keys in planted.values() for k in keys.values() if c.get(k) is not None
    }

    for name in ("r*", "r[1]", "ra{b}"):
        code, report = _audit(capsys, str(root / name), "--fix")
        assert code == 1
        assert {e["run_id"] for e in report["entries"]} == {name}
        assert sorted(report["fix"]["deleted"]) == sorted(
            [planted[name]["stale"], planted[name]["orphan"]]
        )
        for other, keys in planted.items():
            if other in ("r*", "r[1]", "ra{b}"):
                continue
            for key in keys.values():
                if key in snapshot:
                    assert c.dump(key) == snapshot[key], (name, other, key)

    # --runs is a glob over folder names: escaped, it selects the one run.
    code, report = _audit(capsys, "--runs-root", str(root), "--runs", "r[?]")
    assert report["runs"] == 1 and {e["run_id"] for e in report["entries"]} == {"r?"}
    code, report = _audit(capsys, "--runs-root", str(root))
    assert report["runs"] == len(GLOBBY)
    assert report["counts"]["stale"] == len(GLOBBY) - 3


def test_patterns_are_scanned_run_pinned(tmp_path: Path, r13: Any, capsys: Any) -> None:
    rules = json.loads(Path(redisprep.rules_path()).read_text())
    rules["controllers"]["omni"] = {"keys": [], "patterns": ["{wd}/_pups/*/omni.nodb"]}
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(rules))
    root = tmp_path / "runs"
    for name in ("p*", "pq"):
        for scen in ("s1", "s2"):
            (root / name / "_pups" / scen).mkdir(parents=True)
            (root / name / "_pups" / scen / "omni.nodb").write_text(scen)
            r13.set(str(root / name / "_pups" / scen / "omni.nodb"), scen)
    r13.set(str(root / "p*" / "_pups" / "s2" / "omni.nodb"), "old")
    r13.set(str(root / "pq" / "_pups" / "s1" / "omni.nodb"), "old")
    code, report = _audit(capsys, str(root / "p*"), "--rules", str(path), "--fix")
    assert code == 1
    omni = sorted((e["file"], e["state"]) for e in report["entries"] if e["controller"] == "omni")
    assert omni == [
        (str(root / "p*" / "_pups" / "s1" / "omni.nodb"), "fresh"),
        (str(root / "p*" / "_pups" / "s2" / "omni.nodb"), "stale"),
    ]
    assert report["fix"]["deleted"] == [str(root / "p*" / "_pups" / "s2" / "omni.nodb")]
    assert r13.get(str(root / "pq" / "_pups" / "s1" / "omni.nodb")) == "old"


def test_batches_give_the_same_answer(tmp_path: Path, capsys: Any) -> None:
    root = tmp_path / "runs"
    from support.layouts import Layout as L

    lay = L("standalone", os.environ["REDIS_URL"])
    try:
        for i in range(7):
            _plant(lay, root / f"run{i}")
    finally:
        lay.close()
    _, one = _audit(capsys, "--runs-root", str(root), "--batch", "1")
    _, many = _audit(capsys, "--runs-root", str(root), "--batch", "3")
    _, all_ = _audit(capsys, "--runs-root", str(root))

    def without_ttl(report: dict[str, Any]) -> list[dict[str, Any]]:
        return [dict(e, ttl=None) for e in report["entries"]]

    assert without_ttl(one) == without_ttl(many) == without_ttl(all_)
    for a, b in zip(one["entries"], all_["entries"]):  # TTLs tick between the audits
        assert (a["ttl"] is None) == (b["ttl"] is None)
        assert a["ttl"] is None or 0 <= a["ttl"] - b["ttl"] <= 5
    assert len(all_["entries"]) == 7 * CONTROLLERS
    assert all_["counts"]["stale"] == 7


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "name run folders"),
        (["{root}/nope"], "not a run folder"),
        (["{root}/a", "--runs-root", "{root}"], "not both"),
        (["--runs", "*"], "--runs needs --runs-root"),
        (["--runs-root", "{root}/nope"], "no such directory"),
        (["--runs-root", "{root}", "--runs", "zz*"], "matches 'zz*'"),
        (["--runs-root", "{root}", "--runs", "../*"], "relative to the runs root"),
        (["{root}/a", "--batch", "0"], "--batch must be at least 1"),
        (["{root}/a", "--rules", "{root}/no-rules.json"], "no-rules.json"),
    ],
)
def test_bad_input_exits_2(
    tmp_path: Path, r13: Any, capsys: Any, args: list[str], message: str
) -> None:
    root = tmp_path / "runs"
    lay = Layout("standalone", os.environ["REDIS_URL"])
    try:
        keys = _plant(lay, root / "a")
    finally:
        lay.close()
    assert main([a.replace("{root}", str(root)) for a in args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert r13.exists(keys["stale"]) and r13.exists(keys["orphan"])


def test_unreachable_redis_exits_2(tmp_path: Path, capsys: Any) -> None:
    (tmp_path / "a").mkdir()
    url = f"redis://127.0.0.1:{free_port()}/0"
    try:
        assert main([str(tmp_path / "a"), "--redis-url", url]) == 2
    finally:
        redisprep.configure(os.environ["REDIS_URL"])
    err = capsys.readouterr().err
    assert "redisprep audit: error:" in err and "Traceback" not in err


def test_cli_subcommand_and_progress_on_a_terminal(tmp_path: Path, r13: Any) -> None:
    root = tmp_path / "runs"
    for i in range(3):
        (root / f"run{i}").mkdir(parents=True)
    r13.set(str(root / "run1" / "climate.nodb"), "cached, file gone")
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "redisprep", "audit", "--runs-root", str(root)],
            stdout=subprocess.PIPE,
            stderr=follower,
            text=True,
            timeout=60,
            check=False,
        )
        os.close(follower)
        follower = -1
        progress = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            progress += chunk
    finally:
        if follower >= 0:
            os.close(follower)
        os.close(leader)
    assert done.returncode == 1, done.stdout
    assert "orphan  1" in done.stdout
    assert b"\raudit: 3/3 runs (100%" in progress
    # Not a terminal: no progress line.
    quiet = subprocess.run(
        [sys.executable, "-m", "redisprep", "audit", "--runs-root", str(root)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert quiet.returncode == 1 and quiet.stderr == ""


def test_keys_are_the_engines_for_any_run_name(tmp_path: Path) -> None:
    """Each run's keys are the engine's own renders (values inserted literally)."""
    from redisprep.audit import _ALL, _every_controller_rules

    engine = _every_controller_rules(Rules.load())
    auditor = Auditor()
    try:
        for name in [*GLOBBY, "a{b}c", "x y", "__redisprep_audit_run__x", "é"]:
            wd = str(tmp_path / "runs" / name)
            entries = auditor.entries_of(wd, name)
            assert [e.file for e in entries] == engine.keys_for(_ALL, wd), name
            assert {e.controller for e in entries} == set(Rules.load().controllers)
    finally:
        auditor.close()
