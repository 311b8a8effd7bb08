"""The shapes of the dicts the native module returns, as ``TypedDict``s.

The stub (``_redisprep.pyi``) uses them as return types and the package
re-exports them, so a type checker knows every key and its type::

    from redisprep import ConnectionInfo, Preflight

    report: Preflight = prep.preflight(explain=True)
    report["checklist"]["climate"]      # bool
    report["checklst"]                  # a type error

They are plain dicts at run time (``TypedDict`` adds no checks). Written for
Python 3.9 (no ``NotRequired``): a key that only some calls return is declared in
a ``total=False`` subclass.
"""

from __future__ import annotations

from typing import Literal, Optional, TypedDict, Union

__all__ = [
    "CheckExplanation",
    "ConnectionInfo",
    "ConnectionParams",
    "ExplainEntry",
    "Preflight",
    "Stats",
]


class ExplainEntry(TypedDict):
    """One controller a task invalidates, from ``Rules.explain()`` and
    ``RedisPrep.explain()``."""

    controller: str
    """The controller (``climate`` for ``climate.nodb``)."""
    via: list[str]
    """The task chain that reaches it: ``[task]`` when direct, else through cascades."""
    direct: bool
    """True when the task itself names the controller (``len(via) <= 1``)."""
    keys: list[str]
    """Exact cache keys deleted (templates when no run folder is given)."""
    patterns: list[str]
    """``SCAN MATCH`` patterns whose matches are deleted."""
    db: int
    """The Redis DB of the caches."""


class _PreflightBase(TypedDict):
    checklist: dict[str, bool]
    """Each check (``climate``, ``wepp``, ...) in rules-file order: done or not."""
    lock_statuses: dict[str, bool]
    """For each ``locked:<name>`` field: ``<name>`` -> value is ``true``."""
    last_modified: Optional[int]
    """``last_modified`` if an integer, else the newest ``timestamps:*``, else None."""


class Preflight(_PreflightBase, total=False):
    """wepppy's dependency checklist, from ``RedisPrep.preflight()``,
    ``Rules.evaluate_checks()``, ``timestamp_and_preflight()`` and ``last_preflight``."""

    explain: dict[str, list[str]]
    """Only with ``explain=True``: for each false check, why (for a person)."""


class CheckExplanation(TypedDict):
    """The evaluator's explanation of a checklist, from ``Rules.explain_checks()``
    (what ``preflight --explain`` prints)."""

    checklist: dict[str, bool]
    lock_statuses: dict[str, bool]
    last_modified: Optional[int]
    explain: dict[str, list[str]]
    """For each false check, why (for a person)."""
    tasks: dict[str, Optional[str]]
    """For each check, the task it is about (``None`` when it names none)."""
    groups: dict[str, dict[str, list[str]]]
    """The groups the reasons name (and those they use): ``{name: {"max" |
    "first_present": [operand, ...]}}``, as written in the rules file."""


class _ConnectionInfoBase(TypedDict):
    layout: Literal["standalone", "cluster"]
    """Which layout is in force (docs/CLUSTER.md)."""
    address: str
    """Where it connects, printable: ``host:port`` or the socket path; on the
    cluster the seed nodes, ``host:port,host:port,...``."""
    prep_db: int
    """The DB of the prep hashes (0 on the cluster: one keyspace)."""
    connect_timeout: float
    """Seconds."""
    timeout: float
    """Seconds, per command."""
    retries: int
    """Reconnect attempts when a pooled socket turns out dead."""
    fsync: bool
    events: bool
    events_channel: str
    min_replicas: int
    """Replicas that must acknowledge each write (``WAIT``); 0 = off."""
    replica_timeout: float
    """Seconds ``WAIT`` may block."""
    source: str
    """The setting the address came from: ``configure(url)``, ``REDIS_URL``,
    ``RQ_REDIS_URL``, ``SESSION_REDIS_URL``, ``REDISPREP_CLUSTER_URL``,
    ``REDIS_HOST/REDIS_PORT`` or ``default``."""
    password: Optional[str]
    """``"set (from REDIS_PASSWORD_FILE)"`` (or ``the URL``, ``REDIS_PASSWORD``,
    ``password_file``); ``None`` without a password. Never the password."""
    password_file: Optional[str]
    """The secrets file the password was read from."""


class ConnectionInfo(_ConnectionInfoBase, total=False):
    """The settings in force, from ``connection_info()``; never a password.
    ``url`` is there on the standalone layout, ``nodes`` on the cluster."""

    url: str
    """Standalone: the URL with any password replaced by ``***``."""
    nodes: list[str]
    """Cluster: the seed nodes (``redis://host:port``)."""


class _ConnectionParamsBase(TypedDict):
    layout: Literal["standalone", "cluster"]
    username: Optional[str]
    password: Optional[str]
    """With credentials: for building a client, never for printing."""
    connect_timeout: float
    timeout: float


class ConnectionParams(_ConnectionParamsBase, total=False):
    """What a redis-py client is built from, from ``connection_params()``: on the
    standalone layout ``db`` and ``host``/``port``/``ssl`` (``ssl_cert_reqs``,
    ``ssl_ca_certs`` with TLS) or ``path`` (a Unix socket); on the cluster
    ``nodes`` as ``[host, port]`` pairs."""

    db: int
    host: str
    port: int
    path: str
    ssl: bool
    ssl_cert_reqs: Literal["required", "none"]
    ssl_ca_certs: Optional[str]
    nodes: list[list[Union[str, int]]]


class Stats(TypedDict):
    """Process-wide counters since import, from ``redisprep.stats()``."""

    timestamps: int
    invalidations: int
    keys_deleted: int
    failures: int
    round_trips: int
    connects: int
    dumps_written: int
    recoveries: int
    rules_reloads: int
    replication_errors: int
    divergences: int
    divergent_fields: int
    torn_dump_retries: int
