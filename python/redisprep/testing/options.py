"""The plugin's settings, each resolved in one place: a factory argument, else
the command line, else the ini file (``pytest.ini`` / ``[tool.pytest.ini_options]``),
else the environment where one is named, else the default."""

from __future__ import annotations

import os
from typing import Optional

import pytest

#: (ini name, command-line flag, help, default)
EXEC = ("redisprep_server_exec", "--redisprep-server-exec", "redis-server")
URL = ("redisprep_url", "--redisprep-url", "")
KEEP = ("redisprep_keep", "--redisprep-keep", False)
#: the environment variable of noproc mode (wepppy's docker-compose CI)
URL_ENV = "REDISPREP_TEST_URL"
#: the RQ database of the worker fixture (wepppy's ``RQ_DB``)
RQ_DB = 9


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("redisprep", "redisprep: a private Redis server for invalidation tests")
    group.addoption(
        EXEC[1],
        dest=EXEC[0],
        default=None,
        metavar="EXE",
        help="server executable of redisprep_server (default redis-server; valkey-server works)",
    )
    group.addoption(
        URL[1],
        dest=URL[0],
        default=None,
        metavar="URL",
        help=f"use this running server instead of starting one (noproc; also ${URL_ENV})",
    )
    group.addoption(
        KEEP[1],
        dest=KEEP[0],
        action="store_true",
        default=None,
        help="keep the server and the run folders after a failure (prints where)",
    )
    parser.addini(EXEC[0], "server executable of redisprep_server", default=EXEC[2])
    parser.addini(URL[0], "URL of a running server to use instead of starting one", default="")
    parser.addini(KEEP[0], "keep the server and run folders after a failure", type="bool")


def server_exec(config: pytest.Config, given: Optional[str] = None) -> str:
    """The executable: argument > ``--redisprep-server-exec`` > ini > ``redis-server``."""
    cli: Optional[str] = config.getoption(EXEC[0])
    ini = str(config.getini(EXEC[0]) or "")
    return given or cli or ini or EXEC[2]


def noproc_url(config: pytest.Config, given: Optional[str] = None) -> Optional[str]:
    """The URL of a server to use as is: argument > ``--redisprep-url`` > ini >
    ``$REDISPREP_TEST_URL``; ``None``: start a private server."""
    cli: Optional[str] = config.getoption(URL[0])
    ini = str(config.getini(URL[0]) or "")
    return given or cli or ini or os.environ.get(URL_ENV) or None


def keep(config: pytest.Config) -> bool:
    """``--redisprep-keep`` or ini ``redisprep_keep``."""
    cli: Optional[bool] = config.getoption(KEEP[0])
    return bool(cli) if cli is not None else bool(config.getini(KEEP[0]))
