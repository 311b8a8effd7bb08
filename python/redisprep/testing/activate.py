"""Point redisprep at a test server for one test, with the rules the test's
``redisprep_rules`` marker names, and put everything back afterwards."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pytest

from .state import Snapshot, url_of

MARKER = "redisprep_rules"


def marker_rules(node: pytest.Item, tmp: Path) -> Optional[str]:
    """The rules file of the test's ``redisprep_rules`` marker (a path, or a dict
    written to a file under ``tmp``); ``None`` without the marker."""
    mark = node.get_closest_marker(MARKER)
    if mark is None:
        return None
    if len(mark.args) != 1 or mark.kwargs:
        raise pytest.UsageError(f"@pytest.mark.{MARKER} takes one path or dict: {mark}")
    given: Any = mark.args[0]
    if isinstance(given, dict):
        path = tmp / "redisprep_rules.json"
        path.write_text(json.dumps(given))
        return str(path)
    if isinstance(given, (str, os.PathLike)):
        return os.fspath(given)
    raise pytest.UsageError(f"@pytest.mark.{MARKER} takes a path or a dict, not {given!r}")


@contextlib.contextmanager
def activated(url: str, request: pytest.FixtureRequest, tmp: Path) -> Iterator[str]:
    """``configure(url)`` and the marker's rules for the block; the previous
    configuration and rules afterwards."""
    from .. import configure, set_rules_path

    saved = Snapshot.take()
    try:
        configure(url)
        rules = marker_rules(request.node, tmp)
        if rules is not None:
            set_rules_path(rules)
        yield url
    finally:
        saved.restore()


@contextlib.contextmanager
def events_on() -> Iterator[str]:
    """Events on for the block (same server and options); the channel in force."""
    from .. import configure

    saved = Snapshot.take()
    if saved.info is None or saved.params is None:
        raise RuntimeError("redisprep is not configured for a server: use redisprep_url")
    options: dict[str, Any] = {"events": True}
    try:
        configure(url_of(saved.params, saved.info), **{**saved.options(), **options})
        yield saved.info["events_channel"]
    finally:
        saved.restore()
