"""Helpers for the reliability suite: private servers with short timeouts, a
listener that accepts and never answers, a stalled server (``DEBUG SLEEP``),
forked children that report back, and dump/Redis comparisons.

The root ``tests/conftest.py`` reconfigures redisprep to the session server
(and flushes it) before every test, so a test may point redisprep anywhere.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, Optional

import pytest
import redis

import redisprep
from support.redis_server import RedisServer, url_with_db

#: Generous upper bound for one call that must fail "within the configured
#: timeout" (0.3 s here). It only detects hangs; it is not a latency claim.
HANG_BOUND = 10.0

#: Short timeouts used by the fault tests.
FAST = {"timeout": 0.3, "connect_timeout": 0.3}


def configure_fast(url: str, retries: int = 2, **kw: Any) -> None:
    """Point redisprep at ``url`` with short timeouts."""
    args: dict[str, Any] = {**FAST, "retries": retries}
    args.update(kw)
    redisprep.configure(url, **args)


def read_dump(run_dir: os.PathLike[str] | str) -> dict[str, str]:
    """The run's ``redisprep.dump`` as a dict (fails the test if it is not a JSON object)."""
    with open(os.path.join(run_dir, "redisprep.dump"), encoding="utf-8") as fp:
        data = json.load(fp)
    assert isinstance(data, dict), data
    return data


def redis_hash(client: redis.Redis[str], key: str) -> dict[str, str]:
    """The run's hash minus ``locked:*`` fields: what the dump must hold."""
    return {k: v for k, v in client.hgetall(key).items() if not k.startswith("locked:")}


def temp_files(run_dir: os.PathLike[str] | str) -> list[str]:
    """Temp files a dump writer left behind (there must never be any)."""
    return [n for n in os.listdir(run_dir) if n.endswith(".tmp")]


def timed(fn: Callable[[], Any]) -> tuple[float, Optional[BaseException]]:
    """Run ``fn``; return (elapsed seconds, the exception it raised or None)."""
    t0 = time.monotonic()
    try:
        fn()
    except BaseException as e:  # the caller inspects it
        return time.monotonic() - t0, e
    return time.monotonic() - t0, None


def wait_until(predicate: Callable[[], bool], deadline: float = 30.0, step: float = 0.01) -> None:
    """Poll ``predicate`` until true; fail the test after ``deadline`` seconds."""
    end = time.monotonic() + deadline
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"condition not reached within {deadline} s")
        time.sleep(step)


class SilentListener:
    """A TCP listener that accepts connections, records what they send, and
    never answers: the hang case of a half-dead server or a black-holing proxy."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port: int = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.sock.settimeout(0.05)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                with self._lock:
                    conns = list(self._conns)
                for c in conns:
                    self._drain(c)
                continue
            conn.setblocking(False)
            with self._lock:
                self._conns.append(conn)
                self.received.append(b"")

    def _drain(self, c: socket.socket) -> None:
        try:
            data = c.recv(65536)
        except (BlockingIOError, OSError):
            return
        if data:
            with self._lock:
                i = self._conns.index(c)
                self.received[i] += data

    def all_received(self) -> bytes:
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            self._drain(c)
        with self._lock:
            return b"".join(self.received)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        with self._lock:
            for c in self._conns:
                c.close()
        self.sock.close()


def client_for_db(url: str, db: int) -> redis.Redis[str]:
    """A redis-py client on ``db`` of the server at ``url``."""
    return redis.Redis.from_url(url_with_db(url, db), decode_responses=True)


@pytest.fixture
def c13(redis_info: Any) -> redis.Redis[str]:
    """The session server's cache DB 13 (same as the root ``r13`` fixture)."""
    client = client_for_db(redis_info.url, 13)
    assert client.connection_pool.connection_kwargs["db"] == 13
    return client


@pytest.fixture
def silent_listener() -> Iterator[SilentListener]:
    listener = SilentListener()
    try:
        yield listener
    finally:
        listener.close()


@contextlib.contextmanager
def stalled(host: str, port: int, seconds: float) -> Iterator[socket.socket]:
    """Make the server unresponsive for ``seconds`` with ``DEBUG SLEEP``.

    Yields once a probe ``PING`` on another connection went unanswered for
    0.2 s, i.e. the server is really asleep; on exit waits for the sleep's
    own ``+OK`` so the server is responsive again."""
    sleeper = socket.create_connection((host, port), timeout=5)
    sleeper.sendall(f"*3\r\n$5\r\nDEBUG\r\n$5\r\nSLEEP\r\n$3\r\n{seconds:.1f}\r\n".encode())
    probes: list[socket.socket] = []
    try:
        end = time.monotonic() + 10
        while True:
            probe = socket.create_connection((host, port), timeout=5)
            probes.append(probe)
            probe.sendall(b"*1\r\n$4\r\nPING\r\n")
            probe.settimeout(0.2)
            try:
                probe.recv(64)
            except socket.timeout:
                break  # the server is asleep
            if time.monotonic() > end:
                raise AssertionError("DEBUG SLEEP never took effect")
        yield sleeper
        sleeper.settimeout(seconds + 10)
        assert sleeper.recv(64).startswith(b"+OK")
    finally:
        for p in probes:
            p.close()
        sleeper.close()


class Child:
    """A forked child running a function; ``result()`` returns (exit status, its JSON result).

    A child exception becomes ``{"error": type, "message": ..., "traceback": ...}``
    with status 1. The child never returns into pytest (``os._exit``)."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            status = 0
            try:
                os.close(r)
                try:
                    out: Any = fn()
                except BaseException as e:  # reported to the parent
                    status = 1
                    out = {
                        "error": type(e).__name__,
                        "message": str(e),
                        "errno": getattr(e, "errno", None),
                        "traceback": traceback.format_exc(),
                    }
                with os.fdopen(w, "w") as fp:
                    json.dump(out, fp)
            finally:
                os._exit(status)
        os.close(w)
        self.pid = pid
        self._fd = r

    def result(self, timeout: float = 60.0) -> tuple[int, Any]:
        with os.fdopen(self._fd) as fp:
            text = fp.read()  # EOF when the child exits
        _, status = wait_pid(self.pid, timeout)
        return status, json.loads(text) if text else None


def run_in_child(fn: Callable[[], Any], timeout: float = 60.0) -> tuple[int, Any]:
    """``fork()``, run ``fn`` in the child, wait: (exit status, JSON result)."""
    return Child(fn).result(timeout)


def wait_pid(pid: int, timeout: float) -> tuple[int, int]:
    """waitpid with a deadline (kills the child if it overruns)."""
    end = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            return done, code
        if time.monotonic() > end:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            raise AssertionError(f"child {pid} did not finish within {timeout} s")
        time.sleep(0.01)


@contextlib.contextmanager
def unwritable(folder: Path) -> Iterator[str]:
    """Make ``folder`` refuse new files, in a way that holds for root too.

    Tests run as root here, where ``chmod 0o555`` is not enforced; the
    immutable attribute (``chattr +i``) is. Without root, chmod works.
    Yields the mechanism used."""
    if os.geteuid() != 0:
        mode = folder.stat().st_mode
        folder.chmod(0o555)
        try:
            yield "chmod 0555"
        finally:
            folder.chmod(mode)
        return
    chattr = shutil.which("chattr")
    if chattr is None:
        pytest.skip("running as root without chattr: cannot make a folder read-only")
    done = subprocess.run([chattr, "+i", str(folder)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"chattr +i is not supported here: {done.stderr.strip()}")
    try:
        yield "chattr +i"
    finally:
        subprocess.run([chattr, "-i", str(folder)], check=True)


def start_server(
    make_server: type[RedisServer],
    extra_args: list[str],
    client_kwargs: Optional[dict[str, Any]] = None,
    scheme: str = "redis",
    port: Optional[int] = None,
) -> RedisServer:
    """Start a private server with extra arguments (``--requirepass``, TLS...)
    whose readiness probe and ``.client()`` use ``client_kwargs``."""
    kwargs = dict(client_kwargs or {})

    class Custom(make_server):  # type: ignore[misc, valid-type]
        @property
        def url(self) -> str:
            return f"{scheme}://{self.host}:{self.port}/0"

        def client(self, db: int = 0, **kw: Any) -> redis.Redis[str]:
            return redis.Redis(
                host=self.host, port=self.port, db=db, decode_responses=True, **kwargs, **kw
            )

    server: RedisServer = Custom(port=port, extra_args=extra_args)
    return server.start()


def tls_args(port: int, cert_dir: Path) -> list[str]:
    """redis-server arguments for TLS only (plain TCP disabled) on ``port``."""
    return [
        "--port", "0", "--tls-port", str(port),
        "--tls-cert-file", str(cert_dir / "server.crt"),
        "--tls-key-file", str(cert_dir / "server.key"),
        "--tls-ca-cert-file", str(cert_dir / "ca.crt"),
        "--tls-auth-clients", "no",
    ]  # fmt: skip


def make_certs(out: Path) -> Path:
    """A self-signed CA and a server certificate for 127.0.0.1 (SAN IP and DNS)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    out.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=out, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
        "/CN=redisprep test CA", "-keyout", "ca.key", "-out", "ca.crt")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", "server.key", "-out", "server.csr")  # fmt: skip
    (out / "san.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "basicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
    )
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.crt")  # fmt: skip
    (out / "server.key").chmod(0o644)
    return out
