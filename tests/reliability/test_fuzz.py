"""Time-bounded fuzzing of the rules parser and the dump loader (hypothesis,
in a subprocess so that a Rust abort or a segfault shows as an exit status),
plus the regression inputs kept in ``fuzz_regressions.json``.

``REDISPREP_FUZZ_SECONDS`` sets the budget (default 20 s in CI). A failure
prints the input; add it to ``fuzz_regressions.json`` with the fix.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis

import redisprep
from redisprep import RedisPrep, Rules

HERE = Path(__file__).parent
BUDGET = float(os.environ.get("REDISPREP_FUZZ_SECONDS", "20"))
REGRESSIONS: list[dict[str, Any]] = json.loads((HERE / "fuzz_regressions.json").read_text())


def test_fuzz_rules_parser_and_dump_loader(redis_info: Any, tmp_path: Path) -> None:
    env = {**os.environ, "REDIS_URL": redis_info.url}
    env.pop("REDISPREP_RULES", None)
    done = subprocess.run(
        [sys.executable, str(HERE / "fuzz_worker.py"), str(BUDGET), redis_info.url, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=BUDGET + 90,
    )
    failure = tmp_path / "failure.json"
    if failure.exists():
        report = json.loads(failure.read_text())
        pytest.fail(f"fuzz input mishandled ({report['target']}):\n{report['traceback']}")
    # a negative status is a signal: an abort (Rust panic across FFI) or a crash
    assert done.returncode == 0, (done.returncode, done.stderr[-3000:])
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    # every target really ran, and each of its branches was reached
    for key in ("rules_accepted", "rules_rejected", "dump_loaded", "dump_rejected"):
        assert figures.get(key, 0) > 0, figures
    assert figures["dump_round_trips"] > 0, figures
    assert figures["examples"] >= 4 * 150, figures
    print(f"\nfuzz: {BUDGET:.0f} s budget: {figures}")


@pytest.mark.parametrize("case", REGRESSIONS, ids=[c["name"] for c in REGRESSIONS])
def test_fuzz_regressions(case: dict[str, Any], run_dir: Path, r0: redis.Redis[str]) -> None:
    """Inputs worth keeping: each gives its documented outcome and nothing else."""
    data: str = case["input"]
    if "nest" in case:
        opening, closing, depth = case["nest"]
        data = data.replace("@@", opening * depth + closing * depth)
    if case["target"] == "rules":
        if case["expect"] == "error":
            with pytest.raises(redisprep.RulesError):
                Rules.from_json(data)
        else:
            Rules.from_json(data).graph("dot")
        return
    raw = data.encode("utf-8", "surrogatepass")
    path = run_dir / "redisprep.dump"
    path.write_bytes(raw)
    prep = RedisPrep.__new__(RedisPrep, str(run_dir))
    if case["expect"] == "error":
        with pytest.raises(redisprep.DumpFormatError):
            prep.lazy_load()
        assert r0.exists("abc-def") == 0
    else:
        prep.lazy_load()
        assert r0.hgetall("abc-def") == {**case["expect"], "attrs:loaded": "true"}
    assert path.read_bytes() == raw


def test_rust_panics_unwind_into_python() -> None:
    """PyO3 turns a Rust panic into ``pyo3_runtime.PanicException`` only when
    panics unwind; ``panic = "abort"`` in a profile would kill the interpreter
    (wepppy's web worker) instead. The fuzz worker above also runs in a
    subprocess, so an abort there shows as a signal exit status."""
    cargo = (HERE.parents[1] / "Cargo.toml").read_text()
    assert "[profile.release]" in cargo
    assert re.findall(r"(?m)^\s*panic\s*=.*$", cargo) == []  # the default: unwind
