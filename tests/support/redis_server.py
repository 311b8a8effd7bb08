"""Private redis-server processes for tests: never the shared 6379 instance.

The implementation lives in the package (``redisprep._server``, which the demo
uses as its embedded Redis); re-exported here for the tests."""

from __future__ import annotations

from redisprep._demo.nodb import url_with_db
from redisprep._server import (
    RedisServer,
    RedisServerError,
    free_port,
    redis_server_binary,
    server_from_env,
)

__all__ = [
    "RedisServer",
    "RedisServerError",
    "free_port",
    "redis_server_binary",
    "server_from_env",
    "url_with_db",
]
