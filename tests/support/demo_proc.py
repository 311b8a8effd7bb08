"""Run ``python -m redisprep demo`` as a subprocess, the way a person does."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import Optional

DEMO_CMD = [sys.executable, "-m", "redisprep", "demo"]


def demo_env() -> dict[str, str]:
    """The environment without the test session's Redis settings: the demo must
    use only what its command line says (by default, its own private Redis)."""
    env = dict(os.environ)
    for var in ("REDIS_URL", "RQ_REDIS_URL", "REDISPREP_RUNS_ROOT"):
        env.pop(var, None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_once(args: Sequence[str], timeout: float = 90.0) -> subprocess.CompletedProcess[str]:
    """``demo --once ARGS``, bounded; stdout and stderr captured together."""
    return subprocess.run(
        [*DEMO_CMD, "--once", *args],
        env=demo_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )


class DemoProcess:
    """The interactive demo in the background; its output lines are collected."""

    def __init__(self, args: Sequence[str] = ()) -> None:
        self.proc = subprocess.Popen(
            [*DEMO_CMD, *args],
            env=demo_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[Optional[str]] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, prefix: str, timeout: float = 60.0) -> str:
        """The rest of the first output line that starts with ``prefix`` (stripped)."""
        for line in self.lines:
            if line.strip().startswith(prefix):
                return line.strip()[len(prefix) :].strip()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            if line is None:
                break
            self.lines.append(line)
            if line.strip().startswith(prefix):
                return line.strip()[len(prefix) :].strip()
        raise AssertionError(f"demo never printed {prefix!r}; output:\n" + self.output())

    def output(self) -> str:
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.lines.append(line)
        return "\n".join(self.lines)

    def interrupt(self, timeout: float = 30.0) -> int:
        """Ctrl-C (SIGINT) and wait for a clean exit; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError("demo did not stop on Ctrl-C:\n" + self.output()) from None
        self._reader.join(5)
        self.output()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return code
