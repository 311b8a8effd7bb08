"""The benchmark script runs end to end (``--quick``: tiny iteration counts) and
prints every table, row, ratio and target, and ``--json`` holds every target with
its measured value and verdict. Nothing here looks at the numbers: speed is
measured by ``make bench``, never asserted by the test suite.

The sections run in three groups (``--section``), one process each, so that each
run stays short on a loaded machine; together they cover every section."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

ROOT = Path(__file__).resolve().parent.parent
FLOOR = "floor (Rust: 1 round trip + atomic write)"
CORE = "redisprep core from Rust (no Python)"
WITH_FLOOR = shutil.which("cargo") is not None
WITH_CLUSTER = shutil.which("redis-cli") is not None


class Out:
    def __init__(self, text: str) -> None:
        self.text = text

    def section(self, title: str) -> str:
        """The lines of one `== title` block."""
        start = self.text.index(f"== {title}")
        end = self.text.find("\n== ", start + 1)
        return self.text[start : end if end != -1 else len(self.text)]


def check_fs(out: Out, fs: str) -> int:
    for n in (0, 3, 30):
        block = out.section(f"timestamp(), {n} keys to invalidate, run folder on {fs}")
        rows = ["legacy (no invalidation)", "legacy + naive invalidation", "redisprep"]
        if WITH_FLOOR:
            rows += [CORE, FLOOR]
        for row in rows:
            assert re.search(rf"{re.escape(row)}\s+\d+\.\d\s+\d+\.\d\s+\d+", block), (row, block)
        assert "legacy + naive / redisprep:" in block
        if WITH_FLOOR:
            assert "redisprep / floor:" in block
        if n == 3:  # the targeted case carries its verdicts
            assert len(re.findall(r"\(target [<>]= [\d.]+x\) (PASS|MISS)", block)) == (
                2 if WITH_FLOOR else 1
            ), block
    block = out.section(f"__getitem__, run folder on {fs}")
    for row in ("legacy prep[task]", "redis-py hget", "redisprep prep[task]"):
        assert row in block
    assert re.search(r"redis-py hget / redisprep: [\d.]+x \(target >= 1.5x\) (PASS|MISS)", block)
    block = out.section(f"getInstance (warm process), run folder on {fs}")
    assert len(re.findall(r"\(target >= 3x\) (PASS|MISS)", block)) == 2, block
    for op in ("timestamps_report()", "set_rq_job_id()"):
        block = out.section(f"{op}, run folder on {fs}")
        assert f"legacy {op}" in block and f"redisprep {op}" in block
        assert re.search(r"legacy / redisprep: [\d.]+x", block)
    block = out.section(f"threads: timestamp() (3 keys) calls/s, run folders on {fs}")
    assert re.search(r"redisprep, 8 threads \(1 run each\)\s+\d+", block)
    assert re.search(r"8 threads / 1 thread: [\d.]+x \(target >= 1.5x\) (PASS|MISS)", block)
    return 6 if WITH_FLOOR else 5


def check_keyspace(out: Out) -> int:
    block = out.section("timestamp() (3 keys) vs keyspace size")
    for size in (10, 100, 1000):
        for name in ("legacy + naive", "redisprep"):
            assert f"{name}, {size} unrelated keys per DB" in block
    assert re.search(r"redisprep: 1000 / 10 unrelated keys: [\d.]+x \(target <= 1.2x\)", block)
    return 1


def check_facts(out: Out) -> int:
    # these two are facts, not timings: the script must find them true
    assert "KEYS calls: 0, SCAN calls: 0" in out.text
    assert "round trips per timestamp(): 1;" in out.text
    return 2


def check_syscalls_rules_rss(out: Out) -> int:
    if shutil.which("strace"):
        block = out.section("syscalls per timestamp()")
        assert re.search(r"rename\s+0\.0\s+1\.0", block), block  # legacy rewrites in place
    assert re.search(r"RSS over \d+ timestamp\(\) calls", out.text)
    if WITH_FLOOR:
        block = out.section("rules engine (Rust")
        assert re.search(r"controllers_for: [\d.]+ ns/call", block), block
        assert re.search(r"keys_for: +[\d.]+ ns/call", block), block
    if WITH_CLUSTER:
        assert re.search(r"ratio cluster/standalone: [\d.]+x", out.text)
    return 1


def check_endpoint(out: Out) -> int:
    for deployment in ("1 worker x 8 threads", "4 workers x 2 threads (wepppy)"):
        block = out.section(f"endpoint request (gunicorn {deployment})")
        for kind in ("legacy", "redisprep"):
            for clients in (1, 8, 32):
                assert re.search(rf"{kind}\s+{clients}\s+\d+\.\d\s+\d+\.\d\d\s+\d+\.\d\d", block)
        for clients in (1, 32):
            assert re.search(rf"redisprep / legacy req/s, {clients} clients: [\d.]+x\n", block)
        assert re.search(
            r"redisprep / legacy req/s, 8 clients: [\d.]+x \(target >= 1.5x\) (PASS|MISS)", block
        ), block
    return 2


KINDS = (
    "empty job",
    "legacy + naive, cold",
    "legacy + naive, preloaded",
    "redisprep, cold",
    "redisprep, preloaded",
)


def check_rq(out: Out) -> int:
    block = out.section("rq job overhead")
    for kind in KINDS:
        assert re.search(rf"{re.escape(kind)}\s+[\d.]+\s+[\d.]+\s+-?[\d.]+\s+[\d.]+", block), block
    assert re.search(r"\(target <= legacy's\) (PASS|MISS)", block), block
    block = out.section("first call after fork")
    for kind in KINDS:
        assert re.search(rf"{re.escape(kind)}\s+[\d.]+\s+[\d.]+\s+-?[\d.]+", block), block
    for mode, bound in (("preloaded", 1), ("cold", 5)):
        assert re.search(
            rf"{mode}: redisprep adds [\d.]+ ms \(target <= {bound} ms\) (PASS|MISS); "
            r"legacy \+ naive -?[\d.]+ ms \(target <= legacy's\) (PASS|MISS)",
            block,
        ), block
    return 5


GROUPS: dict[str, tuple[list[str], list[Callable[[Out], int]]]] = {
    "timestamp": (
        ["ext4", "tmpfs", "scan", "protocol"],
        [lambda o: check_fs(o, "ext4"), lambda o: check_fs(o, "tmpfs"), check_facts],
    ),
    "facts": (
        ["keyspace", "syscalls", "rules", "rss", *(["cluster"] if WITH_CLUSTER else [])],
        [check_keyspace, check_syscalls_rules_rss],
    ),
    "user-facing": (["endpoint", "rqjob", "fork"], [check_endpoint, check_rq]),
}


@pytest.mark.timeout(400)
@pytest.mark.parametrize("group", list(GROUPS))
def test_quick_bench_prints_every_row_and_ratio(group: str, tmp_path: Path) -> None:
    sections, checks = GROUPS[group]
    out_json = tmp_path / "bench.json"
    cmd = [sys.executable, str(ROOT / "bench" / "bench_prep.py"), "--quick"]
    cmd += ["--json", str(out_json), "--section", *sections]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=380)
    out = Out(proc.stdout)
    assert proc.returncode == 0, proc.stderr[-3000:] + out.text[-3000:]
    assert f"sections: {' '.join(sections)}" in out.text
    expected = sum(check(out) for check in checks)
    targets = out.section("targets").split("\n\n")[0].splitlines()[1:]
    marks = [line.split()[0] for line in targets if line.strip()]
    assert len(marks) == expected and set(marks) <= {"PASS", "MISS"}, targets
    assert re.search(rf"\d+/{expected} targets met; took \d+ s", out.text)
    data: dict[str, Any] = json.loads(out_json.read_text())
    assert data["run"]["sections"] == sections
    assert len(data["targets"]) == expected
    printed = {line.split(None, 1)[1].split(": ")[0] for line in targets if line.strip()}
    for t in data["targets"]:  # machine-readable, with the names printed
        assert t["name"] in printed and t["verdict"] in ("PASS", "MISS"), t
        assert isinstance(t["value"], float) and isinstance(t["bound"], (int, float)), t
        ok = t["value"] <= t["bound"] if t["op"] == "<=" else t["value"] >= t["bound"]
        assert t["verdict"] == ("PASS" if ok else "MISS"), t


def test_unknown_section_is_refused() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_prep.py"), "--section", "nope"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "invalid choice: 'nope'" in proc.stderr
