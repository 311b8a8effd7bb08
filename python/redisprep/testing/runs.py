"""A run folder for one test, its prep hash, and its NoDb controller caches the
way wepppy writes them: DB 13 (the rules' ``db``), key = the ``.nodb`` file's
path, TTL 72 hours. On the cluster layout the keys are the core's for that
layout (``_redisprep.cache_key``): one keyspace, the run's hash tag."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Optional

from .. import Rules, active_rules
from ..prep import RedisPrep

#: wepppy's NoDb cache TTL: 72 hours
CACHE_TTL = 72 * 3600


def current_rules() -> Rules:
    """The rules in force in this process (the packaged default when none loaded yet)."""
    return active_rules() or Rules.load(None)


def new_run_id() -> str:
    """A run id of wepppy's shape (``adjective-noun``-like, unique per call)."""
    return f"pytest-{secrets.token_hex(4)}"


class PrepRun:
    """One run: ``wd`` (a fresh folder named ``run_id``), ``prep`` (its
    ``RedisPrep``), and its caches. ``cleanup()`` removes its keys from Redis."""

    def __init__(self, root: Path, run_id: Optional[str] = None) -> None:
        self.run_id = run_id or new_run_id()
        path = Path(root) / self.run_id
        path.mkdir(parents=True, exist_ok=False)
        self.path = path
        self.wd = str(path)
        self.prep: RedisPrep = RedisPrep.getInstance(self.wd)

    @property
    def rules(self) -> Rules:
        return current_rules()

    def nodb_path(self, controller: str) -> str:
        """``<wd>/<controller>.nodb``, the controller's file."""
        return os.path.join(self.wd, f"{controller}.nodb")

    def cache_key(self, controller: str) -> str:
        """The key of ``controller``'s cache: its ``.nodb`` path in DB 13 (the
        cluster layout: the core's key for that path)."""
        from .._redisprep import cache_key

        return cache_key(self.run_id, self.nodb_path(controller))

    def cache(self) -> Any:
        """A new client on the caches' DB of the server redisprep uses (close it)."""
        from .._client import from_params
        from .._redisprep import connection_params

        return from_params(connection_params(), db=self.rules.db)

    def seed_caches(self, controllers: Optional[Iterable[str]] = None) -> list[str]:
        """Cache every controller of the rules (or those named) like a NoDb
        ``dump()``: its ``.nodb`` file's text (``{}`` when there is no file) at
        ``<wd>/<controller>.nodb`` with a 72 h TTL. Returns the keys written."""
        names = list(self.rules.controllers if controllers is None else controllers)
        unknown = sorted(set(names) - set(self.rules.controllers))
        if unknown:
            raise ValueError(f"not controllers of the rules ({self.rules.source}): {unknown}")
        keys = []
        with self.cache() as cache, cache.pipeline(transaction=False) as pipe:
            for name in names:
                key, path = self.cache_key(name), self.nodb_path(name)
                text = Path(path).read_text() if os.path.isfile(path) else "{}"
                pipe.set(key, text, ex=CACHE_TTL)
                keys.append(key)
            pipe.execute()
        return keys

    def cached(self) -> set[str]:
        """The controllers of the rules whose cache entry exists now."""
        names = self.rules.controllers
        with self.cache() as cache, cache.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.exists(self.cache_key(name))
            found = pipe.execute()
        return {name for name, n in zip(names, found) if n}

    def cleanup(self) -> None:
        """Delete the run's prep hash and every cache key under its folder."""
        from .._client import from_params
        from .._redisprep import connection_params

        params = connection_params()
        with from_params(params) as prep_db:
            prep_db.delete(self.prep.hash_key)
        from .._redisprep import cache_key

        with self.cache() as cache:
            pattern = _glob_escape(cache_key(self.run_id, self.wd + "/")) + "*"
            keys = list(cache.scan_iter(match=pattern, count=1000))
            if keys:
                cache.delete(*keys)

    def __repr__(self) -> str:
        return f"<redisprep.testing.PrepRun {self.run_id} at {self.wd}>"


def _glob_escape(text: str) -> str:
    """``text`` as a literal in a Redis ``MATCH`` pattern."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
