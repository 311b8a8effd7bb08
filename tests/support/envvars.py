"""The environment variables redisprep reads for its connection settings, and
a helper that clears them for a test (monkeypatch restores them after)."""

from __future__ import annotations

import pytest

SETTINGS_ENV = (
    "REDIS_URL",
    "RQ_REDIS_URL",
    "SESSION_REDIS_URL",
    "REDIS_HOST",
    "REDIS_PORT",
    "REDIS_PASSWORD",
    "REDIS_PASSWORD_FILE",
    "REDISPREP_PREP_DB",
    "REDISPREP_TIMEOUT",
    "REDISPREP_CONNECT_TIMEOUT",
    "REDISPREP_RETRIES",
    "REDISPREP_FSYNC",
    "REDISPREP_EVENTS",
    "REDISPREP_EVENTS_CHANNEL",
    "REDISPREP_MIN_REPLICAS",
    "REDISPREP_REPLICA_TIMEOUT",
    "REDISPREP_TLS_CA",
    "REDISPREP_LAYOUT",
    "REDISPREP_CLUSTER_URL",
)


def settings_free_env(**settings: str) -> dict[str, str]:
    """This process's environment without any connection setting, plus ``settings``
    (for a subprocess driven by the environment alone)."""
    import os

    env = {k: v for k, v in os.environ.items() if k not in SETTINGS_ENV}
    env.update(settings)
    return env


def clear_settings_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset every connection-settings variable for the test."""
    for name in SETTINGS_ENV:
        monkeypatch.delenv(name, raising=False)
