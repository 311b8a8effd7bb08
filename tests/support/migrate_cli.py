"""Run ``python -m redisprep migrate`` as a user does (a fresh process)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema

FIXTURES = Path(__file__).parents[1] / "fixtures"
#: the schema of ``--format json``
SCHEMA = json.loads((FIXTURES / "migrate_output.schema.json").read_text("utf-8"))
#: a fixture tree's endpoint PATHs and job side, as wepppy lays them out
ENDPOINTS = ["wepppy/weppcloud", "wepppy/microservices"]
WORKERS = ["--workers", "wepppy/rq", "wepppy/nodb"]


def run_migrate(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "redisprep", "migrate", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=cwd,
        timeout=timeout,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def verdicts_json(cwd: Path, *extra: str) -> list[dict[str, Any]]:
    """Every row of ``migrate ENDPOINTS --workers ... --format json`` run in the
    tree ``cwd``, checked against the schema."""
    p = run_migrate(*ENDPOINTS, *WORKERS, "--format", "json", *extra, cwd=cwd)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    jsonschema.validate(doc, SCHEMA)
    return list(doc)


def copied_tree(tree: Path, tmp_path: Path) -> Path:
    """A copy of the fixture ``tree`` under ``tmp_path``, for commands that edit it."""
    return Path(shutil.copytree(tree, tmp_path / "tree"))
