"""A small wepppy-like NoDb controller for tests: JSON state in
``<wd>/<name>.nodb`` and a write-through copy in Redis DB 13 (key = the file
path, 72 h TTL), read-through on a miss (SPEC section 6)."""

from __future__ import annotations

import json
import os
from typing import Any, Optional

import redis

CACHE_DB = 13
TTL = 72 * 3600


class NoDbController:
    def __init__(self, wd: str, name: str, client: redis.Redis[str]) -> None:
        self.wd = os.path.abspath(wd)
        self.name = name
        self.cache = client
        self.last_source: Optional[str] = None

    @property
    def path(self) -> str:
        return os.path.join(self.wd, f"{self.name}.nodb")

    def dump(self, state: dict[str, Any], write_through: bool = True) -> None:
        """Write the file; optionally the cache (wepppy ignores a failed cache write)."""
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
