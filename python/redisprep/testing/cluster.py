"""A local Redis Cluster for tests (``factories.cluster()``): 3 masters + 3
replicas from ``redis-server --cluster-enabled yes`` processes (or any server
program: ``executable``) on free ports below 55535 (the bus port is port +
10000), joined with ``redis-cli --cluster create ... --cluster-yes``. Optionally
password-protected (``requirepass`` + ``masterauth`` on every node) with extra
per-node arguments (e.g. an ACL ``--user``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from typing import Any, Optional

import redis

from .._client import userinfo
from .._server import RedisServer

__all__ = ["LocalCluster", "cluster_port"]


def _cli(executable: Optional[str]) -> str:
    """``redis-cli`` (or ``valkey-cli``) on PATH or beside the server program."""
    beside = os.path.dirname(executable) if executable and os.sep in executable else None
    for name in ("redis-cli", "valkey-cli"):
        found = shutil.which(name) or (shutil.which(name, path=beside) if beside else None)
        if found:
            return found
    raise RuntimeError("a cluster needs redis-cli (or valkey-cli): apt-get install redis-tools")


def cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too (ports <= 55535)."""
    import random
    import socket

    for _ in range(200):
        port = random.randint(20000, 45000)
        try:
            for p in (port, port + 10000):
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                    s.bind(("127.0.0.1", p))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port pair for a cluster node")


class LocalCluster:
    """``masters`` primaries with ``replicas`` replicas each; ``url`` is the
    ``redis+cluster://`` URL redisprep takes. ``cleanup()`` stops every node."""

    def __init__(
        self,
        masters: int = 3,
        replicas: int = 1,
        node_timeout_ms: int = 1000,
        password: Optional[str] = None,
        extra_args: Sequence[str] = (),
        executable: Optional[str] = None,
    ) -> None:
        self.executable = executable
        self.nodes: list[RedisServer] = []
        self.count = masters * (1 + replicas)
        self.replicas = replicas
        self.node_timeout_ms = node_timeout_ms
        self.password = password
        self.extra_args = list(extra_args)

    @property
    def hosts(self) -> str:
        """``127.0.0.1:p1,127.0.0.1:p2,...`` of the live nodes."""
        return ",".join(f"127.0.0.1:{n.port}" for n in self.nodes if n.proc is not None)

    @property
    def url(self) -> str:
        """The ``redis+cluster://`` URL (with ``:password@`` when password-protected)."""
        auth = userinfo("", self.password) if self.password is not None else ""
        return f"redis+cluster://{auth}{self.hosts}"

    def url_as(self, username: str, password: str) -> str:
        """``redis+cluster://user:password@h1:p1,...`` (``username=""``: the default user)."""
        return f"redis+cluster://{userinfo(username, password)}{self.hosts}"

    def _auth_args(self) -> list[str]:
        if self.password is None:
            return []
        return ["-a", self.password, "--no-auth-warning"]

    def start(self, timeout: float = 60.0) -> LocalCluster:
        cli = _cli(self.executable or RedisServer.executable)
        for _ in range(self.count):
            port = cluster_port()
            args = [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                f"nodes-{port}.conf",
                "--cluster-node-timeout",
                str(self.node_timeout_ms),
                "--cluster-replica-validity-factor",
                "0",
                *self.extra_args,
            ]
            node = RedisServer(
                port=port, extra_args=args, password=self.password, executable=self.executable
            )
            self.nodes.append(node)  # before start(): cleanup() stops it if start() fails
            node.start()
        addrs = [f"127.0.0.1:{n.port}" for n in self.nodes]
        subprocess.run(
            [
                cli,
                *self._auth_args(),
                "--cluster",
                "create",
                *addrs,
                "--cluster-replicas",
                str(self.replicas),
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=timeout,
        )
        self.wait_ok(timeout)
        return self

    def wait_ok(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ok = True
            for n in self.nodes:
                if n.proc is None:
                    continue
                node: Any = n.client(socket_timeout=1)  # redis-py's commands are untyped
                try:
                    info = node.execute_command("CLUSTER", "INFO")
                except redis.exceptions.RedisError:
                    ok = False
                    break
                text = info if isinstance(info, str) else str(info)
                if "cluster_state:ok" not in text:
                    ok = False
                    break
            if ok:
                return
            time.sleep(0.1)
        raise RuntimeError("cluster did not reach cluster_state:ok")

    def wait_replicas(self, timeout: float = 60.0) -> None:
        """Wait until every live replica has synced with its master
        (``cluster_state:ok`` comes earlier)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                infos = [
                    n.client(socket_timeout=1).info("replication")
                    for n in self.nodes
                    if n.proc is not None
                ]
            except redis.exceptions.RedisError:
                infos = []
            slaves = [i for i in infos if i.get("role") == "slave"]
            if infos and slaves and all(i.get("master_link_status") == "up" for i in slaves):
                return
            time.sleep(0.1)
        raise RuntimeError("cluster replicas did not sync")

    def client(self, **kw: Any) -> redis.RedisCluster:
        """A ``decode_responses=True`` cluster client (as the default user when
        password-protected; ``username=``/``password=`` override)."""
        n = next(n for n in self.nodes if n.proc is not None)
        if self.password is not None:
            kw.setdefault("password", self.password)
        return redis.RedisCluster(host="127.0.0.1", port=n.port, decode_responses=True, **kw)

    def master_of(self, key: str) -> RedisServer:
        whole: Any = self.client()  # redis-py's cluster commands are untyped
        slot = whole.keyslot(key)
        for n in self.nodes:
            if n.proc is None:
                continue
            node: Any = n.client()
            for start, end, master, *_ in node.execute_command("CLUSTER", "SLOTS"):
                if start <= slot <= end:
                    port = int(master[1])
                    return next(x for x in self.nodes if x.port == port)
        raise RuntimeError("no master found")

    def flushall(self) -> None:
        for n in self.nodes:
            if n.proc is None:
                continue
            try:
                n.client(socket_timeout=2).flushall()
            except redis.exceptions.ReadOnlyError:
                pass  # replicas refuse writes; their masters' flush replicates

    def cleanup(self) -> None:
        for n in self.nodes:
            n.cleanup()
