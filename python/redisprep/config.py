"""Process configuration: connection settings, runtime rules, and the
``runid -> wd`` resolver used by ``RedisPrep.getInstanceFromRunID``."""

from __future__ import annotations

import os
import threading
from typing import Callable, Optional, Union

from . import _client, _redisprep
from .errors import ResolverError

__all__ = ["configure", "resolve_wd", "set_run_resolver"]

Resolver = Callable[[str], str]

_lock = threading.Lock()
_resolver: Optional[Resolver] = None
_runs_root: Optional[str] = None


def configure(
    url: Optional[str] = None,
    *,
    prep_db: Optional[int] = None,
    connect_timeout: Optional[float] = None,
    timeout: Optional[float] = None,
    retries: Optional[int] = None,
    fsync: Optional[bool] = None,
    events: Optional[bool] = None,
    events_channel: Optional[str] = None,
    tls_ca_file: Optional[str] = None,
    min_replicas: Optional[int] = None,
    replica_timeout: Optional[float] = None,
    password_file: Optional[str] = None,
    rules: Union[str, os.PathLike[str], None] = None,
    runs_root: Optional[str] = None,
    resolver: Optional[Resolver] = None,
) -> None:
    """Configure redisprep for this process.

    Arguments left as ``None`` come from the environment (``REDIS_URL``,
    ``RQ_REDIS_URL``, ``SESSION_REDIS_URL``, ``REDIS_HOST``/``REDIS_PORT``,
    ``REDIS_PASSWORD``, ``REDIS_PASSWORD_FILE``, ``REDISPREP_*``). The password
    is the URL's own, else the contents of ``password_file``, else
    ``REDIS_PASSWORD``, else the contents of the file ``REDIS_PASSWORD_FILE``
    names (surrounding whitespace stripped); an unusable file raises
    ``ConfigError`` naming the setting and the path. Idle connections are
    closed; the next call uses the new settings. ``min_replicas``
    (``REDISPREP_MIN_REPLICAS``, default 0 = off) makes every write wait until
    that many replicas have it, for at most ``replica_timeout`` seconds
    (``REDISPREP_REPLICA_TIMEOUT``, default 1); fewer acknowledgements raise
    ``ReplicationError``. ``rules`` sets the runtime rules file; ``runs_root``
    or ``resolver`` set how ``getInstanceFromRunID`` finds a run folder.
    """
    _redisprep.configure(
        url,
        prep_db=prep_db,
        connect_timeout=connect_timeout,
        timeout=timeout,
        retries=retries,
        fsync=fsync,
        events=events,
        events_channel=events_channel,
        tls_ca_file=tls_ca_file,
        min_replicas=min_replicas,
        replica_timeout=replica_timeout,
        password_file=password_file,
    )
    _client.reset()
    if rules is not None:
        _redisprep.set_rules_path(os.fspath(rules))
    global _resolver, _runs_root
    with _lock:
        if runs_root is not None:
            _runs_root = runs_root
        if resolver is not None:
            _resolver = resolver


def set_run_resolver(resolver: Optional[Resolver]) -> None:
    """Register the ``runid -> wd`` function (wepppy: ``get_wd``). ``None`` removes it."""
    global _resolver
    with _lock:
        _resolver = resolver


def resolve_wd(runid: str) -> str:
    """Turn a run id into its folder: the registered resolver, else
    ``runs_root`` (``configure(runs_root=...)`` or ``$REDISPREP_RUNS_ROOT``) + runid."""
    if not isinstance(runid, str) or not runid or "/" in runid or runid in (".", ".."):
        raise ResolverError(f"invalid run id {runid!r}")
    with _lock:
        resolver, root = _resolver, _runs_root
    if resolver is not None:
        return resolver(runid)
    root = root or os.environ.get("REDISPREP_RUNS_ROOT")
    if root:
        return os.path.join(root, runid)
    raise ResolverError(
        "no run resolver is configured: call redisprep.set_run_resolver(get_wd), "
        "redisprep.configure(runs_root=...), or set REDISPREP_RUNS_ROOT"
    )
