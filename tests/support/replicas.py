"""Replication for the failover tests: a private replica of a private server
(``redis-server --replicaof``), and waiting for its link to come up."""

from __future__ import annotations

import time

import redis

from .redis_server import RedisServer


def link_up(replica: RedisServer) -> bool:
    """True once the replica has synced with its primary."""
    try:
        info = replica.client(socket_timeout=1).info("replication")
    except redis.exceptions.RedisError:
        return False
    return info.get("role") == "slave" and info.get("master_link_status") == "up"


def start_replica(
    make_server: type[RedisServer], primary: RedisServer, timeout: float = 30.0
) -> RedisServer:
    """A replica of ``primary`` on a free port, returned once its link is up."""
    replica = make_server(extra_args=["--replicaof", primary.host, str(primary.port)]).start()
    deadline = time.monotonic() + timeout
    while not link_up(replica):
        if time.monotonic() > deadline:
            raise AssertionError(f"replica {replica.port} did not sync: {replica.log_tail()}")
        time.sleep(0.02)
    return replica


def promote(replica: RedisServer) -> None:
    """What a failover manager does: ``REPLICAOF NO ONE`` on the replica."""
    replica.client(socket_timeout=5).execute_command("REPLICAOF", "NO", "ONE")
