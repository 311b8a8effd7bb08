"""Record the invalidations of one test from redisprep's events (docs/LIVE_FEED.md):
every ``timestamp()`` that invalidates publishes one JSON event, in its own
transaction, from whichever process calls it (RQ work horses included)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from typing import Any, Optional, Union

from .runs import PrepRun, current_rules

Run = Union[PrepRun, str, None]

#: how long an assertion waits for an event still on its way (seconds)
WAIT = 2.0


class InvalidationRecorder:
    """Subscribed to the events channel from construction to ``close()``.
    ``events`` is every event received so far (dicts: ``run_id``, ``wd``, ``task``,
    ``keys``, ``timestamp``, ``checklist``)."""

    def __init__(self, client: Any, channel: str) -> None:
        self.channel = channel
        self._pubsub = client.pubsub()
        self._pubsub.subscribe(channel)
        self._events: list[dict[str, Any]] = []
        # nothing published after the confirmation can be missed
        msg = self._pubsub.get_message(timeout=5.0)
        if msg is None or msg.get("type") != "subscribe":
            self._pubsub.close()
            raise RuntimeError(f"could not subscribe to the events channel {channel!r}: {msg!r}")

    def _drain(self, timeout: float) -> None:
        while True:
            msg = self._pubsub.get_message(timeout=timeout)
            if msg is None:
                return
            if msg.get("type") == "message":
                data = msg["data"]
                self._events.append(json.loads(data if isinstance(data, str) else data.decode()))
            timeout = 0.0

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every invalidation event of the test so far, oldest first."""
        self._drain(0.05)
        return list(self._events)

    def of(self, task: str, run: Run = None) -> list[dict[str, Any]]:
        """The events of ``task`` (of ``run``: a ``PrepRun``, a run id or a folder)."""
        return [e for e in self.events if e["task"] == str(task) and _is_run(e, run)]

    def assert_invalidated(
        self, task: object, controllers: Optional[Iterable[str]] = None, run: Run = None
    ) -> list[dict[str, Any]]:
        """Assert that ``task`` was timestamped and invalidated (in ``run``), and that
        the keys it deleted include each of ``controllers``' caches. Waits up to 2 s
        for an event on its way. Returns the matching events."""
        name, wanted = str(task), sorted(set(controllers or ()))
        deadline = time.monotonic() + WAIT
        while True:
            found = self.of(name, run)
            missing = _missing(found, wanted)
            if found and not missing:
                return found
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
        expected = f"{name} invalidates " + (", ".join(wanted) if wanted else "something")
        if not found:
            why = f"no invalidation event of {name}{_in_run(run)}"
        else:
            why = f"{name}{_in_run(run)} invalidated {_names(found)} but not {', '.join(missing)}"
        message = self._message(f"{expected}{_in_run(run)}", why, name, run)
        rules = current_rules()
        if name in rules.tasks:
            reached = {e["controller"] for e in rules.explain(name, None)}
            message += "".join(
                f"\n{c} is not among them: these rules never invalidate it for {name}"
                for c in wanted
                if c not in reached
            )
        raise AssertionError(message)

    def assert_not_invalidated(self, controller: str, run: Run = None) -> None:
        """Assert that no event so far deleted ``controller``'s cache (in ``run``)."""
        time.sleep(0.05)  # let an event published just before arrive
        hits = [e for e in self.events if _is_run(e, run) and controller in _controllers(e)]
        if hits:
            tasks = sorted({e["task"] for e in hits})
            why = f"{', '.join(tasks)} invalidated {controller}{_in_run(run)}"
            raise AssertionError(
                self._message(f"{controller} is not invalidated{_in_run(run)}", why, tasks[0], run)
            )

    def _message(self, expected: str, why: str, task: str, run: Run) -> str:
        lines = [f"expected: {expected}", f"happened: {why}"]
        events = self.events
        lines.append(f"events during the test ({len(events)}):")
        lines += [f"  {_describe(e)}" for e in events] or ["  (none)"]
        lines += explain(task, _wd_of(run))
        return "\n".join(lines)

    def close(self) -> None:
        self._pubsub.close()


def explain(task: str, wd: Optional[str] = None) -> list[str]:
    """The rules' explain for ``task``: each controller and the chain that reaches it."""
    rules = current_rules()
    if task not in rules.tasks:
        return [f"the rules ({rules.source}) have no task {task!r}"]
    lines = [f"the rules ({rules.source}) say {task} invalidates:"]
    for entry in rules.explain(task, wd):
        how = "direct" if entry["direct"] else "via " + " → ".join(entry["via"])
        lines.append(f"  {entry['controller']:<14} {how}")
    return lines if len(lines) > 1 else [*lines, "  (nothing)"]


def _controllers(event: dict[str, Any]) -> set[str]:
    """The controllers whose cache keys the event's ``keys`` name."""
    keys = set(event.get("keys", ()))
    wd = event.get("wd")
    names = set()
    for entry in current_rules().explain(event["task"], wd):
        if keys & set(entry["keys"]):
            names.add(entry["controller"])
    names |= {os.path.basename(k)[: -len(".nodb")] for k in keys if k.endswith(".nodb")}
    return names


def _missing(events: list[dict[str, Any]], wanted: list[str]) -> list[str]:
    seen: set[str] = set()
    for e in events:
        seen |= _controllers(e)
    return [c for c in wanted if c not in seen]


def _names(events: list[dict[str, Any]]) -> str:
    seen: set[str] = set()
    for e in events:
        seen |= _controllers(e)
    return ", ".join(sorted(seen)) or "nothing"


def _describe(event: dict[str, Any]) -> str:
    return f"run {event.get('run_id')}: {event['task']} -> {', '.join(sorted(_controllers(event)))}"


def _is_run(event: dict[str, Any], run: Run) -> bool:
    if run is None:
        return True
    if isinstance(run, PrepRun):
        return bool(event.get("wd") == run.wd)
    return run in (event.get("run_id"), event.get("wd"))


def _wd_of(run: Run) -> Optional[str]:
    if isinstance(run, PrepRun):
        return run.wd
    return run if isinstance(run, str) and os.path.isabs(run) else None


def _in_run(run: Run) -> str:
    if run is None:
        return ""
    return f" in run {run.run_id if isinstance(run, PrepRun) else run}"
