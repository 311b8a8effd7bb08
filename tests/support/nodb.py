"""The wepppy-like NoDb controller now lives in the package (``redisprep._demo.nodb``)
so the demo and the integration tests share it; re-exported here for older tests."""

from __future__ import annotations

from redisprep._demo.nodb import CACHE_DB, TTL, NoDbController

__all__ = ["CACHE_DB", "TTL", "NoDbController"]
