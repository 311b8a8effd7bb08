"""The test harness runs the server program its one setting names: the plugin's
``--redisprep-server-exec`` (script/test's Valkey rows pass valkey-server; by
default redis-server). tests/conftest.py hands it to every server the tests start."""

from __future__ import annotations

import os

import pytest

from redisprep.testing import options
from support.redis_server import RedisServer, RedisServerError, redis_server_binary


def test_a_test_server_runs_the_chosen_program(pytestconfig: pytest.Config) -> None:
    chosen = options.server_exec(pytestconfig)
    server = RedisServer().start()
    try:
        info = server.client().info("server")
    finally:
        server.cleanup()
    assert os.path.realpath(info["executable"]) == os.path.realpath(redis_server_binary(chosen))
    assert ("valkey_version" in info) == ("valkey" in os.path.basename(chosen))


def test_an_unknown_program_is_refused() -> None:
    server = RedisServer(executable="/nonexistent/valkey-server")
    try:
        with pytest.raises(RedisServerError, match="/nonexistent/valkey-server"):
            server.start()
    finally:
        server.cleanup()
