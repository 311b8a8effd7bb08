"""The exception hierarchy. Every error redisprep raises is a ``RedisPrepError``;
each subclass also inherits the standard exception a caller would already catch."""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DumpError",
    "DumpFormatError",
    "InvalidKeyError",
    "RedisCommandError",
    "RedisConnectionError",
    "RedisPrepError",
    "RedisTimeoutError",
    "ReplicationError",
    "ResolverError",
    "RulesError",
    "UnknownControllerError",
]


class RedisPrepError(Exception):
    """Base class of every redisprep error."""


class RedisConnectionError(RedisPrepError, ConnectionError):
    """Redis could not be reached, or the connection broke. Names host:port, never the password."""


class RedisTimeoutError(RedisConnectionError, TimeoutError):
    """Redis did not answer within the configured timeout."""


class RedisCommandError(RedisPrepError):
    """Redis answered a command with an error, or with a reply of an unexpected shape."""


class DumpError(RedisPrepError, OSError):
    """``redisprep.dump`` could not be read or written (the OS error is chained)."""


class DumpFormatError(RedisPrepError, ValueError):
    """``redisprep.dump`` exists but is not a JSON object of strings."""


class RulesError(RedisPrepError, ValueError):
    """A rules file failed to load or validate.

    ``issues`` lists every problem as ``(json_path, message)``.
    """

    def __init__(self, message: str, issues: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.issues: list[tuple[str, str]] = list(issues or [])


class InvalidKeyError(RedisPrepError, TypeError):
    """A task/key argument was not a ``str`` or an ``Enum`` (e.g. ``None``, an int)."""


class UnknownControllerError(RedisPrepError, ValueError):
    """A controller name the rules in force do not define (``refresh_controller_cache``)."""


class ConfigError(RedisPrepError, ValueError):
    """A configuration value (URL, timeout, DB number...) was not acceptable."""


class ResolverError(RedisPrepError, LookupError):
    """``getInstanceFromRunID`` has no way to turn a run id into a folder."""


class ReplicationError(RedisPrepError):
    """Fewer than ``min_replicas`` replicas acknowledged a write within ``replica_timeout``.

    The write **is applied** on the primary, and the run's dump is written as
    usual, but a failover before it replicates would lose it from Redis.
    ``acknowledged`` is how many replicas had it; ``required`` is ``min_replicas``.
    """

    def __init__(self, message: str, acknowledged: int = 0, required: int = 0) -> None:
        super().__init__(message)
        self.acknowledged = acknowledged
        self.required = required
