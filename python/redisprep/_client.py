"""``prep.redis``: a real redis-py client on the prep DB, created lazily and
shared per process (re-created after ``fork()``), configured like the core."""

from __future__ import annotations

import os
import threading
import urllib.parse
from typing import Any, Optional

from . import _redisprep
from .errors import ConfigError

_lock = threading.Lock()
_client: Optional[tuple[int, Any]] = None
#: ``configure(tls_ca_file=...)``; else ``$REDISPREP_TLS_CA`` (as the core).
_tls_ca_file: Optional[str] = None


def url_with_db(url: str, db: int) -> str:
    """``url`` with its DB replaced by ``db`` (``redis.Redis.from_url(url, db=n)``
    would keep the URL's own ``/0``: redis-py gives the URL path precedence)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "unix":
        query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query) if k != "db"]
        query.append(("db", str(db)))
        return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))
    return urllib.parse.urlunsplit(parts._replace(path=f"/{db}"))


def set_tls_ca_file(path: Optional[str]) -> None:
    """The CA bundle for ``rediss://`` (``None``: ``$REDISPREP_TLS_CA``, else system roots)."""
    global _tls_ca_file
    _tls_ca_file = path


def _build(decode_responses: bool = True, db: Optional[int] = None) -> Any:
    """A new redis-py client configured like the core: on the prep DB, or on
    ``db`` (standalone only; the cluster has one keyspace)."""
    try:
        import redis
    except ImportError as e:  # pragma: no cover - redis is a hard dependency
        raise ConfigError("prep.redis needs the 'redis' package: pip install redis") from e
    info = _redisprep.connection_info()
    if info.get("layout") == "cluster":
        from redis.cluster import ClusterNode, RedisCluster

        nodes = []
        for url in info["nodes"]:
            host, _, port = url.split("://", 1)[-1].rpartition(":")
            nodes.append(ClusterNode(host, int(port)))  # type: ignore[no-untyped-call]
        return RedisCluster(
            startup_nodes=nodes,
            decode_responses=decode_responses,
            password=os.environ.get("REDIS_PASSWORD") or None,
        )
    db = int(info["prep_db"]) if db is None else db
    kwargs: dict[str, Any] = {
        "decode_responses": decode_responses,
        "socket_connect_timeout": info["connect_timeout"],
        "socket_timeout": info["timeout"],
    }
    url = os.environ.get("REDISPREP_URL_OVERRIDE")  # set by redisprep.configure(url=...)
    if url is None:
        url = os.environ.get("REDIS_URL") or os.environ.get("RQ_REDIS_URL")
    if url:
        ca = _tls_ca_file or os.environ.get("REDISPREP_TLS_CA")
        if ca and url.lower().startswith("rediss://"):
            kwargs["ssl_ca_certs"] = ca
        try:
            # redis-py lets the URL's own db (path or ?db=) win over a db
            # argument: set the resolved prep DB on the pool explicitly.
            pool = redis.ConnectionPool.from_url(url, **kwargs)
            ckw = pool.connection_kwargs
            ckw["db"] = db
            if ckw.get("host") or ckw.get("path"):
                if not ckw.get("password") and os.environ.get("REDIS_PASSWORD"):
                    ckw["password"] = os.environ["REDIS_PASSWORD"]
                return redis.Redis(connection_pool=pool)
        except ValueError:
            pass
    return redis.Redis(
        host=os.environ.get("REDIS_HOST") or "localhost",
        port=int(os.environ.get("REDIS_PORT") or 6379),
        password=os.environ.get("REDIS_PASSWORD") or None,
        db=db,
        **kwargs,
    )


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
