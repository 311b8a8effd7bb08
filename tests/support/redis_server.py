"""Private redis-server processes for tests: never the shared 6379 instance.

The implementation lives in the package (``redisprep._server``: the demo's
embedded Redis and the pytest plugin's ``redisprep_server``); re-exported here
for the tests. Which executable (``redis-server``, ``valkey-server``) is the
plugin's ``--redisprep-server-exec`` option: tests/conftest.py sets it as
``RedisServer.executable`` for every server the tests start."""

from __future__ import annotations

from typing import Optional

from redisprep._client import url_with_db
from redisprep._server import (
    RedisServer,
    RedisServerError,
    free_port,
    redis_server_binary,
    userinfo,
)

__all__ = [
    "PasswordServer",
    "RedisServer",
    "RedisServerError",
    "free_port",
    "redis_server_binary",
    "url_with_db",
    "userinfo",
]


class PasswordServer(RedisServer):
    """A private server with ``requirepass`` (and ``masterauth``, so it can also be
    a replica of a server with the same password). ACL users go in ``extra_args``
    (``["--user", "alice", "on", ">pw", "~*", "&*", "+@all"]``)."""

    def __init__(
        self, password: str, port: Optional[int] = None, extra_args: Optional[list[str]] = None
    ) -> None:
        super().__init__(port=port, extra_args=extra_args, password=password)
        self.password: str = password
