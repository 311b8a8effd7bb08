"""The two key layouts redisprep runs on, as one object tests can be
parametrised over (the ``layout`` fixture in ``tests/conftest.py``):

- ``standalone``: wepppy's layout on the session's private redis-server
  (prep hash ``<run_id>`` in DB 0, caches ``<rendered template>`` in DB 13);
- ``cluster``: a local 3-master + 3-replica Redis Cluster, started once per
  test session and only when a test asks for it (prep hash ``prep:{<tag>}``,
  caches ``nodb:{<tag>}:<rendered template>``, one keyspace).

The cluster itself is the session fixture ``local_cluster`` (one per session).
"""

from __future__ import annotations

from typing import Any, Optional

import redis

import redisprep
from redisprep import _redisprep

from .cluster import LocalCluster
from .redis_server import url_with_db

__all__ = ["Layout"]


class Layout:
    """Where redisprep keeps a run's keys, and a way to look at them directly.

    ``url`` is what ``redisprep.configure()`` takes; ``client(db)`` is a
    redis-py client seeing what redisprep wrote (on the cluster, ``db`` is
    ignored: there is one keyspace); ``hash_key(run_id)`` and
    ``cache_key(run_id, rendered)`` name a run's keys in this layout.
    """

    def __init__(self, name: str, url: str, cluster: Optional[LocalCluster] = None) -> None:
        self.name = name
        self.url = url
        self.cluster = cluster
        self._clients: dict[int, Any] = {}

    @property
    def is_cluster(self) -> bool:
        return self.cluster is not None

    def client(self, db: int = 0) -> Any:
        key = 0 if self.cluster is not None else db
        if key not in self._clients:
            if self.cluster is not None:
                self._clients[key] = self.cluster.client()
            else:
                self._clients[key] = redis.Redis.from_url(
                    url_with_db(self.url, db), decode_responses=True
                )
        return self._clients[key]

    def hash_key(self, run_id: str) -> str:
        """The prep hash key of ``run_id``, as the core names it (the literal
        bytes are pinned by the core's tests and ``tests/test_layout_keys.py``)."""
        return _redisprep.hash_key(run_id, layout="cluster" if self.is_cluster else "standalone")

    def cache_key(self, run_id: str, rendered: str) -> str:
        """The cache key of a rendered template (e.g. ``<wd>/climate.nodb``) for ``run_id``."""
        layout = "cluster" if self.is_cluster else "standalone"
        return _redisprep.cache_key(run_id, rendered, layout=layout)

    def flush(self) -> None:
        if self.cluster is not None:
            self.cluster.wait_ok()
            self.cluster.flushall()
        else:
            self.client(0).flushall()

    def activate(self) -> None:
        """Empty this layout's Redis and point redisprep at it."""
        self.flush()
        redisprep.configure(self.url)

    def close(self) -> None:
        for c in self._clients.values():
            c.close()
        self._clients.clear()

    def __repr__(self) -> str:
        return f"Layout({self.name!r})"
