"""``redisprep.testing``: a pytest plugin for testing cache invalidation against
a real Redis (or Valkey) server. Installed with the package and loaded by pytest
through the ``pytest11`` entry point; importing it starts nothing.

Fixtures (docs/TESTING.md): ``redisprep_server`` (session), ``redisprep_url``,
``prep_run``, ``invalidations``, ``rq_worker``; custom variants with
:mod:`redisprep.testing.factories`. Options: ``--redisprep-server-exec``,
``--redisprep-url`` (or ``REDISPREP_TEST_URL``: use a running server, start none),
``--redisprep-keep``; marker ``@pytest.mark.redisprep_rules(path_or_dict)``.
"""

from __future__ import annotations

from .events import InvalidationRecorder
from .runs import PrepRun
from .server import Server
from .worker import RqWorker, WorkResult

__all__ = ["InvalidationRecorder", "PrepRun", "RqWorker", "Server", "WorkResult"]
