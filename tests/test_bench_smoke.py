"""The benchmark script runs end to end (``--quick``: tiny iteration counts) and
prints every table, row, ratio and target. Nothing here looks at the numbers:
speed is measured by ``make bench``, never asserted by the test suite."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FLOOR = "floor (Rust: 1 round trip + atomic write)"
CORE = "redisprep core from Rust (no Python)"


@pytest.mark.timeout(400)
def test_quick_bench_prints_every_row_and_ratio(tmp_path: Path) -> None:
    with_floor = shutil.which("cargo") is not None
    with_cluster = shutil.which("redis-cli") is not None
    out_json = tmp_path / "bench.json"
    cmd = [
        sys.executable,
        str(ROOT / "bench" / "bench_prep.py"),
        "--quick",
        "--json",
        str(out_json),
    ]
    if with_cluster:
        cmd.append("--cluster")
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=380)
    out = proc.stdout
    assert proc.returncode == 0, proc.stderr[-3000:] + out[-3000:]

    def section(title: str) -> str:
        """The lines of one `== title` block."""
        start = out.index(f"== {title}")
        end = out.find("\n== ", start + 1)
        return out[start : end if end != -1 else len(out)]

    for fs in ("ext4", "tmpfs"):
        for n in (0, 3, 30):
            block = section(f"timestamp(), {n} keys to invalidate, run folder on {fs}")
            rows = ["legacy (no invalidation)", "legacy + naive invalidation", "redisprep"]
            if with_floor:
                rows += [CORE, FLOOR]
            for row in rows:
                assert re.search(rf"{re.escape(row)}\s+\d+\.\d\s+\d+\.\d\s+\d+", block), (
                    row,
                    block,
                )
            assert "legacy + naive / redisprep:" in block
            if with_floor:
                assert "redisprep / floor:" in block
            if n == 3:  # the targeted case carries its verdicts
                assert len(re.findall(r"\(target [<>]= [\d.]+x\) (PASS|MISS)", block)) == (
                    2 if with_floor else 1
                ), block
        block = section(f"__getitem__, run folder on {fs}")
        for row in ("legacy prep[task]", "redis-py hget", "redisprep prep[task]"):
            assert row in block
        assert re.search(
            r"redis-py hget / redisprep: [\d.]+x \(target >= 1.5x\) (PASS|MISS)", block
        )
        block = section(f"getInstance (warm process), run folder on {fs}")
        assert len(re.findall(r"\(target >= 3x\) (PASS|MISS)", block)) == 2, block
        for op in ("timestamps_report()", "set_rq_job_id()"):
            block = section(f"{op}, run folder on {fs}")
            assert f"legacy {op}" in block and f"redisprep {op}" in block
            assert re.search(r"legacy / redisprep: [\d.]+x", block)
        block = section(f"threads: timestamp() (3 keys) calls/s, run folders on {fs}")
        assert re.search(r"redisprep, 8 threads \(1 run each\)\s+\d+", block)
        assert re.search(r"8 threads / 1 thread: [\d.]+x \(target >= 1.5x\) (PASS|MISS)", block)

    block = section("timestamp() (3 keys) vs keyspace size")
    for size in (10, 100, 1000):
        for name in ("legacy + naive", "redisprep"):
            assert f"{name}, {size} unrelated keys per DB" in block
    assert re.search(r"redisprep: 1000 / 10 unrelated keys: [\d.]+x \(target <= 1.2x\)", block)
    # these two are facts, not timings: the script must find them true
    assert "KEYS calls: 0, SCAN calls: 0" in out
    assert "round trips per timestamp(): 1;" in out
    if shutil.which("strace"):
        block = section("syscalls per timestamp()")
        assert re.search(r"rename\s+0\.0\s+1\.0", block), block  # legacy rewrites in place
    assert re.search(r"RSS over \d+ timestamp\(\) calls", out)
    if with_floor:
        block = section("rules engine (Rust")
        assert re.search(r"controllers_for: [\d.]+ ns/call", block), block
        assert re.search(r"keys_for: +[\d.]+ ns/call", block), block
    if with_cluster:
        assert re.search(r"ratio cluster/standalone: [\d.]+x", out)

    targets = section("targets").split("\n\n")[0].splitlines()[1:]
    marks = [line.split()[0] for line in targets if line.strip()]
    expected = 16 if with_floor else 14
    assert len(marks) == expected and set(marks) <= {"PASS", "MISS"}, targets
    assert re.search(rf"\d+/{expected} targets met", out)
    assert out_json.stat().st_size > 0
