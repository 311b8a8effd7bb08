"""A local Redis Cluster for tests: 3 masters + 3 replicas from
`redis-server --cluster-enabled yes` processes on free ports, joined with
`redis-cli --cluster create ... --cluster-replicas 1 --cluster-yes`."""

from __future__ import annotations

import shutil
import subprocess
import time

import redis

from .redis_server import RedisServer


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
    def __init__(self, masters: int = 3, replicas: int = 1, node_timeout_ms: int = 1000) -> None:
        self.nodes: list[RedisServer] = []
        self.count = masters * (1 + replicas)
        self.replicas = replicas
        self.node_timeout_ms = node_timeout_ms

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{n.port}" for n in self.nodes if n.proc is not None)
        return f"redis+cluster://{hosts}"

    def start(self, timeout: float = 60.0) -> LocalCluster:
        if shutil.which("redis-cli") is None:
            raise RuntimeError("redis-cli is not installed")
        for _ in range(self.count):
            port = cluster_port()
            node = RedisServer(
                port=port,
                extra_args=[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    f"nodes-{port}.conf",
                    "--cluster-node-timeout",
                    str(self.node_timeout_ms),
                    "--cluster-replica-validity-factor",
                    "0",
                ],
            )
            node.start()
            self.nodes.append(node)
        addrs = [f"127.0.0.1:{n.port}" for n in self.nodes]
        subprocess.run(
            [
                "redis-cli",
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
                try:
                    info = n.client(socket_timeout=1).execute_command("CLUSTER", "INFO")
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

    def client(self) -> redis.RedisCluster:
        n = next(n for n in self.nodes if n.proc is not None)
        return redis.RedisCluster(host="127.0.0.1", port=n.port, decode_responses=True)

    def master_of(self, key: str) -> RedisServer:
        slot = self.client().keyslot(key)
        for n in self.nodes:
            if n.proc is None:
                continue
            for start, end, master, *_ in n.client().execute_command("CLUSTER", "SLOTS"):
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
