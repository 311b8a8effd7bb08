"""The test harness runs the server program ``REDISPREP_TEST_SERVER`` names
(script/test's Valkey rows set it to valkey-server; unset: redis-server)."""

from __future__ import annotations

import os

import pytest

from support.redis_server import RedisServer, RedisServerError, chosen_server_binary


def test_a_test_server_runs_the_chosen_program() -> None:
    server = RedisServer().start()
    try:
        info = server.client().info("server")
    finally:
        server.cleanup()
    assert os.path.realpath(info["executable"]) == os.path.realpath(chosen_server_binary())
    chosen = os.environ.get("REDISPREP_TEST_SERVER", "")
    assert ("valkey_version" in info) == ("valkey" in os.path.basename(chosen))


def test_an_unknown_program_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDISPREP_TEST_SERVER", "/nonexistent/valkey-server")
    server = RedisServer()
    try:
        with pytest.raises(RedisServerError, match="REDISPREP_TEST_SERVER"):
            server.start()
    finally:
        server.cleanup()
