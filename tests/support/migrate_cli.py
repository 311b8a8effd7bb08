"""Run ``python -m redisprep migrate`` as a user does (a fresh process)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


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
