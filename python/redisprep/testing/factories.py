"""Fixture factories for custom variants (pytest-redis's model): a second
server, a password-protected one, a Redis Cluster, an existing server or
cluster by URL, and run folders on any of them.

    # conftest.py
    from redisprep.testing import factories

    auth_server = factories.server(password="s3cret")
    valkey = factories.server(executable="valkey-server")
    cluster = factories.cluster()                                       # 3 masters + 3 replicas
    existing = factories.server(url="redis+cluster://127.0.0.1:7000")   # noproc
    auth_run = factories.run("auth_server")
    cluster_run = factories.run("cluster")

Each setting comes from the factory argument, else the command line, else the
ini file (``redisprep_server_exec``); a factory with ``url=`` starts nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

from . import options
from .activate import activated
from .runs import PrepRun
from .server import Server

KEPT = pytest.StashKey[list[str]]()
FAILED = pytest.StashKey[bool]()


def note_kept(config: pytest.Config, what: str) -> None:
    """Remember something ``--redisprep-keep`` kept, for the terminal summary."""
    config.stash.setdefault(KEPT, []).append(what)


def failed(request: pytest.FixtureRequest) -> bool:
    """Whether the requesting test failed (function scope) or any test of the session did."""
    if request.scope == "function":
        return bool(request.node.stash.get(FAILED, False))
    return request.session.testsfailed > 0


def server(
    executable: Optional[str] = None,
    url: Optional[str] = None,
    password: Optional[str] = None,
    extra_args: Optional[list[str]] = None,
    scope: str = "session",
    noproc_from_options: bool = False,
) -> Callable[..., Any]:
    """A fixture giving a :class:`Server`: a private one started from
    ``executable`` (else ``--redisprep-server-exec``, else ini
    ``redisprep_server_exec``, else ``redis-server``) with ``password`` /
    ``extra_args``, stopped when the fixture's scope ends; or, with ``url``, that
    running server (nothing started or stopped). ``noproc_from_options``: also take
    the URL from ``--redisprep-url`` / ini / ``$REDISPREP_TEST_URL``."""

    def fixture(request: pytest.FixtureRequest) -> Iterator[Server]:
        config = request.config
        given = options.noproc_url(config, url) if noproc_from_options else url
        if given:
            yield Server(given)
            return
        srv = Server.start(options.server_exec(config, executable), password, extra_args)
        try:
            yield srv
        finally:
            keep = options.keep(config) and failed(request)
            if keep and srv.process is not None:
                proc = srv.process
                pid = proc.proc.pid if proc.proc is not None else None
                note_kept(config, f"server {srv.url} (pid {pid}, dir {proc.dir})")
            srv.stop(keep=keep)

    return pytest.fixture(scope=scope)(fixture)  # type: ignore[call-overload,no-any-return]


def cluster(
    masters: int = 3,
    replicas: int = 1,
    executable: Optional[str] = None,
    password: Optional[str] = None,
    extra_args: Optional[list[str]] = None,
    scope: str = "session",
) -> Callable[..., Any]:
    """A fixture giving a started :class:`~redisprep.testing.cluster.LocalCluster`
    (``.url`` is its ``redis+cluster://`` URL, ``.client()`` a cluster client):
    ``masters`` primaries with ``replicas`` replicas each, every node run from
    ``executable`` (else the session's option, as :func:`server`), stopped when the
    fixture's scope ends. Needs ``redis-cli`` (or ``valkey-cli``)."""

    def fixture(request: pytest.FixtureRequest) -> Iterator[Any]:
        from .cluster import LocalCluster

        exe = options.server_exec(request.config, executable)
        made = LocalCluster(
            masters, replicas, password=password, executable=exe, extra_args=extra_args or ()
        )
        try:
            yield made.start()
        finally:
            if options.keep(request.config) and failed(request):
                note_kept(request.config, f"cluster {made.url}")
            else:
                made.cleanup()

    return pytest.fixture(scope=scope)(fixture)  # type: ignore[call-overload,no-any-return]


def prep_run(
    request: pytest.FixtureRequest, root: Path, run_id: Optional[str] = None
) -> Iterator[PrepRun]:
    """A :class:`PrepRun` under ``root`` on the server redisprep uses now; its keys
    removed afterwards (kept, with ``--redisprep-keep``, when the test failed)."""
    run = PrepRun(root, run_id)
    try:
        yield run
    finally:
        if options.keep(request.config) and failed(request):
            note_kept(request.config, f"run {run.run_id}: {run.wd} (and its keys)")
        else:
            run.cleanup()


def run(server: str = "redisprep_server", run_id: Optional[str] = None) -> Callable[..., Any]:
    """A function-scoped fixture giving a :class:`PrepRun` on the server fixture
    named ``server``, with redisprep configured for that server during the test."""

    def fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PrepRun]:
        srv: Server = request.getfixturevalue(server)
        with activated(srv.url, request, tmp_path):
            yield from prep_run(request, tmp_path / "runs", run_id)

    return pytest.fixture(fixture)
