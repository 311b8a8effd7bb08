"""Which TCP connections to Redis a process holds, from ``/proc`` and ``CLIENT LIST``
(fork-safety tests: a child must open its own connections)."""

from __future__ import annotations

import os

import redis


def tcp_ports(pid: int, redis_port: int) -> set[int]:
    """Local ports of the TCP sockets process ``pid`` holds to ``redis_port``."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(int(link[8:-1]))
    ports = set()
    with open(f"/proc/{pid}/net/tcp") as fp:
        next(fp)
        for line in fp:
            cols = line.split()
            local, remote, inode = cols[1], cols[2], int(cols[9])
            if inode in inodes and int(remote.split(":")[1], 16) == redis_port:
                ports.add(int(local.split(":")[1], 16))
    return ports


def ids_of_ports(raw: redis.Redis[str], ports: set[int]) -> set[int]:
    """Server-side client ids of the connections coming from these local ports."""
    return {int(c["id"]) for c in raw.client_list() if int(c["addr"].rsplit(":", 1)[1]) in ports}
