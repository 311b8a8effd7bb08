"""Run ``python -m redisprep ...`` as a subprocess, the way a person does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Optional


def run_cli(
    *args: str, env: Optional[dict[str, str]] = None, cwd: Optional[Path] = None
) -> subprocess.CompletedProcess[str]:
    """The finished process (text output); never a traceback on stderr. The
    packaged rules apply unless ``env`` names ``REDISPREP_RULES``."""
    full_env = dict(os.environ)
    full_env.pop("REDISPREP_RULES", None)
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "redisprep", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=full_env,
        cwd=cwd,
        timeout=60,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc
