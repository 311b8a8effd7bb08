"""``prep.redis``: a real redis-py client on the prep DB, created lazily and
shared per process (re-created after ``fork()``). Its connection parameters
come from the core (``_redisprep.connection_params()``), so it connects
exactly where the core does; nothing here reads the environment or resolves
settings (``url_with_db`` only rewrites the DB of a URL it is given)."""

from __future__ import annotations

import os
import threading
import urllib.parse
from typing import Any, Optional

from . import _redisprep
from ._types import ConnectionParams
from .errors import ConfigError

_lock = threading.Lock()
_client: Optional[tuple[int, Any]] = None


def url_with_db(url: str, db: int) -> str:
    """``url`` with its DB replaced by ``db`` (``redis.Redis.from_url(url, db=n)``
    would keep the URL's own ``/0``: redis-py gives the URL path precedence)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "unix":
        query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query) if k != "db"]
        query.append(("db", str(db)))
        return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))
    return urllib.parse.urlunsplit(parts._replace(path=f"/{db}"))


def userinfo(username: str, password: str) -> str:
    """``user:password@`` for a URL (``:password@`` without a user), percent-encoded."""
    quote = urllib.parse.quote
    return f"{quote(username, safe='')}:{quote(password, safe='')}@"


def from_params(
    params: ConnectionParams, decode_responses: bool = True, db: Optional[int] = None
) -> Any:
    """A new redis-py client from core connection parameters: on their DB, or
    on ``db`` (standalone only; the cluster has one keyspace)."""
    try:
        import redis
    except ImportError as e:  # pragma: no cover - redis is a hard dependency
        raise ConfigError("prep.redis needs the 'redis' package: pip install redis") from e
    common: dict[str, Any] = {
        "decode_responses": decode_responses,
        "username": params.get("username"),
        "password": params.get("password"),
        "socket_connect_timeout": params["connect_timeout"],
        "socket_timeout": params["timeout"],
    }
    if params["layout"] == "cluster":
        from redis.cluster import ClusterNode, RedisCluster

        nodes = [ClusterNode(h, int(p)) for h, p in params["nodes"]]  # type: ignore[no-untyped-call]
        return RedisCluster(startup_nodes=nodes, **common)
    common["db"] = int(params["db"]) if db is None else db
    path = params.get("path")
    if path is not None:
        return redis.Redis(unix_socket_path=path, **common)
    if params.get("ssl"):
        common["ssl"] = True
        common["ssl_cert_reqs"] = params.get("ssl_cert_reqs", "required")
        if params.get("ssl_ca_certs"):
            common["ssl_ca_certs"] = params["ssl_ca_certs"]
    return redis.Redis(host=params["host"], port=params["port"], **common)


def _build(decode_responses: bool = True, db: Optional[int] = None) -> Any:
    """A new redis-py client configured like the core (see :func:`from_params`)."""
    return from_params(_redisprep.connection_params(), decode_responses, db)


def shared_client() -> Any:
    """The process-wide redis-py client (fork-aware)."""
    global _client
    pid = os.getpid()
    with _lock:
        if _client is None or _client[0] != pid:
            _client = (pid, _build())
        return _client[1]


def reset() -> None:
    """Forget the shared client (the next use builds a new one)."""
    global _client
    with _lock:
        _client = None
