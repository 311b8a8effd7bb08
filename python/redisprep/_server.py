"""A private ``redis-server`` process on a free loopback port, keeping nothing on
disk: the demo's embedded Redis and the test suite's. Never the shared 6379
instance. Installs nothing: when ``redis-server`` is not on ``PATH`` it raises
:class:`RedisServerError` saying how to get it."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

import redis

from ._client import userinfo
from .errors import RedisPrepError

# stop_process is the package's own (the demo's worker), not re-exported for the tests.
__all__ = [
    "DEFAULT_EXECUTABLE",
    "RedisServer",
    "RedisServerError",
    "free_port",
    "redis_server_binary",
    "userinfo",
]

#: The server executable when none is chosen (``valkey-server`` works too). The
#: pytest plugin's ``--redisprep-server-exec`` / ini ``redisprep_server_exec`` is
#: the one place a test session chooses another (``RedisServer.executable``).
DEFAULT_EXECUTABLE = "redis-server"


class RedisServerError(RedisPrepError, RuntimeError):
    """A private ``redis-server`` could not be found or started."""


def stop_process(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM ``proc`` if it still runs; SIGKILL it if it has not exited ``grace``
    seconds later."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_server_binary(executable: Optional[str] = None) -> str:
    """The server executable (a name on ``PATH`` or a path; default ``redis-server``)."""
    name = executable or DEFAULT_EXECUTABLE
    path = shutil.which(name)
    if path is None:
        raise RedisServerError(
            f"{name} is not installed: run script/setup "
            "(or `apt-get install redis-server`), or pass a Redis URL instead"
        )
    return path


class RedisServer:
    """One redis-server on a free loopback port, keeping nothing on disk.

    ``start()`` waits until it answers PING; ``stop()`` terminates it (SIGTERM,
    then SIGKILL after 5 s); ``cleanup()`` also removes its temporary folder.
    ``new_session=True`` starts it in its own session, so a Ctrl-C in the
    terminal reaches only its owner, which then stops it in order.
    """

    def __init__(
        self,
        port: Optional[int] = None,
        extra_args: Optional[list[str]] = None,
        new_session: bool = False,
        executable: Optional[str] = None,
        password: Optional[str] = None,
    ) -> None:
        self.port = port or free_port()
        self.password = password
        if executable is not None:
            self.executable = executable
        self.new_session = new_session
        self.host = "127.0.0.1"
        self.extra_args = list(extra_args or [])
        self.dir = Path(tempfile.mkdtemp(prefix=f"redisprep-redis-{self.port}-"))
        self.proc: Optional[subprocess.Popen[bytes]] = None

    @property
    def url(self) -> str:
        return self.url_as("", self.password) if self.password else self.url_as()

    def url_as(self, username: str = "", password: Optional[str] = None, db: int = 0) -> str:
        """``redis://[user:password@]host:port/db`` (``username=""``: the default user)."""
        auth = "" if password is None else userinfo(username, password)
        return f"redis://{auth}{self.host}:{self.port}/{db}"

    def client(self, db: int = 0, **kw: Any) -> redis.Redis:
        """A ``decode_responses=True`` client on database ``db``."""
        if self.password is not None:
            kw.setdefault("password", self.password)
        return redis.Redis(host=self.host, port=self.port, db=db, decode_responses=True, **kw)

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return (self.dir / "redis.log").read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def start(self, timeout: float = 10.0) -> RedisServer:
        args = [
            redis_server_binary(self.executable),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.dir),
            "--enable-debug-command",
            "local",
            *(
                ["--requirepass", self.password, "--masterauth", self.password]
                if self.password
                else []
            ),
            *self.extra_args,
        ]
        with open(self.dir / "redis.log", "ab") as log:
            self.proc = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, start_new_session=self.new_session
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RedisServerError(f"{self.executable} exited: {self.log_tail()}")
            try:
                with self.client(socket_timeout=0.5) as probe:  # closed: no socket left to GC
                    if probe.ping():
                        return self
            except redis.exceptions.RedisError:
                time.sleep(0.02)
        raise RedisServerError(f"{self.executable} on port {self.port} did not start")

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, 5)
        self.proc = None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def restart(self) -> RedisServer:
        self.kill()
        return self.start()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
