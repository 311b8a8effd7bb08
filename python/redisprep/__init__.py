"""redisprep: a byte-compatible drop-in for wepppy's ``RedisPrep`` whose
``timestamp()`` also invalidates dependent controller caches, with a Rust core.

    from redisprep import RedisPrep, set_task_enum
    set_task_enum(TaskEnum)                  # the application's own task list, once
    prep = RedisPrep.getInstance(wd)
    prep.timestamp(TaskEnum.build_climate)   # records + invalidates, one round trip
"""

from __future__ import annotations

from . import _redisprep
from ._redisprep import (
    Rules,
    __version__,
    active_rules,
    connection_info,
    set_rules_path,
)
from ._types import (
    CheckExplanation,
    ConnectionInfo,
    ConnectionParams,
    ExplainEntry,
    Preflight,
    Stats,
)
from .config import configure, resolve_wd, set_run_resolver
from .errors import (
    ConfigError,
    DumpError,
    DumpFormatError,
    InvalidKeyError,
    RedisCommandError,
    RedisConnectionError,
    RedisPrepError,
    RedisTimeoutError,
    ReplicationError,
    ResolverError,
    RulesError,
    UnknownControllerError,
)
from .prep import RedisPrep
from .task import TaskEnum, set_task_enum, task_enum

__all__ = [
    "CheckExplanation",
    "ConfigError",
    "ConnectionInfo",
    "ConnectionParams",
    "DumpError",
    "DumpFormatError",
    "ExplainEntry",
    "InvalidKeyError",
    "Preflight",
    "RedisCommandError",
    "RedisConnectionError",
    "RedisPrep",
    "RedisPrepError",
    "RedisTimeoutError",
    "ReplicationError",
    "ResolverError",
    "Rules",
    "RulesError",
    "Stats",
    "TaskEnum",
    "UnknownControllerError",
    "__version__",
    "active_rules",
    "configure",
    "connection_info",
    "reset_connections",
    "resolve_wd",
    "rules_path",
    "set_rules_path",
    "set_run_resolver",
    "set_task_enum",
    "stats",
    "task_enum",
]


def stats() -> Stats:
    """Process-wide counters: timestamps, invalidations, keys_deleted, failures, round_trips, ...
    (a fresh dict each call)."""
    return _redisprep.stats()


def reset_connections() -> None:
    """Close idle connections; the next call re-reads the environment."""
    from . import _client

    _redisprep.reset_connections()
    _client.reset()


def rules_path() -> str:
    """Path of the packaged default rules file (also compiled into the native module)."""
    import os

    return os.path.join(os.path.dirname(__file__), "rules", "cache_invalidation_rules.json")
