"""A small wepppy-like NoDb controller: JSON state in ``<wd>/<name>.nodb`` and a
write-through copy in Redis DB 13 (key = the file path, 72 h TTL), read-through
on a miss, like wepppy's NoDb controllers (so deleting a cache key is
always safe). Used by the demo app, its RQ jobs and the tests."""

from __future__ import annotations

import json
import os
from typing import Any, Optional

import redis

from redisprep import _client, _redisprep
from redisprep._client import url_with_db

RedisStr = redis.Redis  # a client made with decode_responses=True

__all__ = ["CACHE_DB", "TTL", "NoDbController", "cache_client", "url_with_db"]

CACHE_DB = 13
TTL = 72 * 3600


def cache_client(url: Optional[str] = None) -> RedisStr:
    """A client on the NoDb cache DB (13) of ``url``; by default of the server
    redisprep uses in this process. Either way the core resolves the
    connection (a URL without a password takes ``REDIS_PASSWORD`` or
    ``REDIS_PASSWORD_FILE``, as redisprep itself does)."""
    params = _redisprep.connection_params() if url is None else _redisprep.connection_params(url)
    client: RedisStr = _client.from_params(params, db=CACHE_DB)
    return client


class NoDbController:
    """One controller of one run: ``<wd>/<name>.nodb`` plus its DB-13 cache key."""

    def __init__(self, wd: str, name: str, client: Optional[RedisStr] = None) -> None:
        self.wd = os.path.abspath(wd)
        self.name = name
        self.cache: RedisStr = client if client is not None else cache_client()
        self.last_source: Optional[str] = None

    @property
    def path(self) -> str:
        """The ``.nodb`` file, which is also the cache key."""
        return os.path.join(self.wd, f"{self.name}.nodb")

    def dump(self, state: dict[str, Any], write_through: bool = True) -> None:
        """Write the file atomically; optionally the cache (wepppy ignores a failed cache write)."""
        text = json.dumps(state)
        tmp = self.path + ".tmp"
        with open(tmp, "w") as fp:
            fp.write(text)
        os.replace(tmp, self.path)
        if write_through:
            self.cache.set(self.path, text, ex=TTL)

    def load(self) -> dict[str, Any]:
        """Cache first; on a miss (or undecodable value) the file, then re-cache."""
        cached = self.cache.get(self.path)
        if cached is not None:
            try:
                state: dict[str, Any] = json.loads(cached)
                self.last_source = "cache"
                return state
            except ValueError:
                self.cache.delete(self.path)
        with open(self.path) as fp:
            text = fp.read()
        self.cache.set(self.path, text, ex=TTL)
        self.last_source = "file"
        result: dict[str, Any] = json.loads(text)
        return result

    def read_file(self) -> dict[str, Any]:
        """The state on disk, bypassing the cache."""
        with open(self.path) as fp:
            result: dict[str, Any] = json.load(fp)
        return result
