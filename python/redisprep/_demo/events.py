"""The live invalidation feed of the demo: ``GET /runs/<runid>/<config>/events``.

A Server-Sent Events stream of the invalidation events redisprep PUBLISHes
inside ``timestamp()``'s transaction (``REDISPREP_EVENTS``; the demo turns them
on). Each connected client gets its own redis-py pub/sub, subscribed to the
events channel, closed when the client goes away (the next write fails: a
keep-alive comment goes out every few seconds) or the demo stops. Nothing polls
Redis: the stream blocks on the subscription's socket.

Each event of this run is sent enriched for the page: the task's label and
emoji, and for every key the rules named, the controller, **why** (``direct``,
or ``via cascade from build_climate → run_wepp_hillslopes …``, from the rules'
explain) and whether it was present. Presence comes from Redis keyspace
notifications (``__keyevent@13__:del``, on the same subscription: Redis sends
a key's ``del`` notification only when the key existed, and before the event,
which is published later in the same transaction); the demo enables them
(``notify-keyspace-events Eg``). Without them ``present`` is ``null``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Optional

from .. import _redisprep
from ..task import task_emoji, task_enum, task_label
from .nodb import CACHE_DB, url_with_db

if TYPE_CHECKING:
    import flask
    import redis

__all__ = ["KEEPALIVE", "enable_keyspace_events", "enrich", "events_blueprint", "events_on"]

KEEPALIVE = 5.0  # seconds between keep-alive comments (how soon a gone client is noticed)
_WAIT = 0.5  # the longest a stream blocks before looking at the stop flag
_DEL_CHANNEL = f"__keyevent@{CACHE_DB}__:del"


def events_on() -> tuple[bool, str]:
    """``(events enabled in this process, channel)``, from redisprep's configuration."""
    info = _redisprep.connection_info()
    return bool(info.get("events")), str(info.get("events_channel") or "")


def _flags(client: redis.Redis) -> Optional[str]:
    """``notify-keyspace-events``, or ``None`` when CONFIG is refused."""
    import redis as _redis

    try:
        reply = client.config_get("notify-keyspace-events")
    except _redis.exceptions.ResponseError:
        return None
    return str(reply.get("notify-keyspace-events", ""))


def _counting(flags: Optional[str]) -> bool:
    return flags is not None and "E" in flags and ("g" in flags or "A" in flags)


def enable_keyspace_events(client: redis.Redis) -> bool:
    """Make Redis notify generic key events (``E`` + ``g``); ``False`` if CONFIG is refused."""
    import redis as _redis

    flags = _flags(client)
    if flags is None or _counting(flags):
        return flags is not None
    try:
        client.config_set("notify-keyspace-events", "".join(sorted(set(flags + "Eg"))))
    except _redis.exceptions.ResponseError:
        return False
    return True


def _label(task: str) -> tuple[str, str]:
    for m in task_enum():
        if str(m) == task:
            return task_label(m), task_emoji(m)
    return task, ""


def enrich(event: dict[str, Any], present: Optional[set[str]]) -> dict[str, Any]:
    """The event as the page shows it: label, emoji, and per key its controller,
    why (from the active rules' explain) and whether it was present
    (``present``: the keys Redis reported deleted; ``None``: unknown)."""
    task = str(event.get("task", ""))
    wd = str(event.get("wd", ""))
    why: dict[str, tuple[str, str]] = {}
    rules = _redisprep.active_rules()
    if rules is not None:
        for plan in rules.explain(task, wd):
            via = [str(v) for v in plan["via"]]
            reason = "direct" if plan["direct"] else "via cascade from " + " → ".join(via)
            for key in plan["keys"]:
                why.setdefault(str(key), (str(plan["controller"]), reason))
    keys = []
    for key in event.get("keys", []):
        controller, reason = why.get(key, ("?", "not in the current rules"))
        keys.append(
            {
                "key": key,
                "controller": controller,
                "why": reason,
                "present": None if present is None else key in present,
            }
        )
    label, emoji = _label(task)
    ts = event.get("timestamp")
    return {
        "run_id": event.get("run_id"),
        "wd": wd,
        "task": task,
        "label": label,
        "emoji": emoji,
        "timestamp": ts,
        "time": time.strftime("%H:%M:%S UTC", time.gmtime(ts)) if isinstance(ts, int) else "",
        "checklist": event.get("checklist", {}),
        "keys": keys,
        "named": len(keys),
        "present": None if present is None else sum(1 for k in keys if k["present"]),
    }


def _sse(event: str, data: dict[str, Any], event_id: Optional[int] = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def stream(
    redis_url: str, wd: str, channel: str, keepalive: float, stop: threading.Event
) -> Iterator[str]:
    """The SSE text of one client: ``ready`` once subscribed, then one
    ``invalidation`` per event of the run in ``wd``; keep-alive comments between."""
    import redis as _redis

    client = _redis.Redis.from_url(url_with_db(redis_url, CACHE_DB), decode_responses=True)
    pubsub = client.pubsub()  # type: ignore[no-untyped-call,unused-ignore]
    try:
        counting = _counting(_flags(client))
        pubsub.subscribe(channel, *([_DEL_CHANNEL] if counting else []))
        for _ in range(2 if counting else 1):  # the confirmations: now subscribed
            while pubsub.get_message(timeout=_WAIT) is None:
                if stop.is_set():
                    return
        yield "retry: 2000\n\n" + _sse("ready", {"channel": channel, "counting": counting})
        deleted: set[str] = set()
        prefix = wd.rstrip("/") + "/"
        sent = 0
        quiet_since = time.monotonic()
        while not stop.is_set():
            msg = pubsub.get_message(timeout=_WAIT)
            if msg is None:
                # A transaction's notifications and its event arrive together: a
                # quiet spell means the deletes seen so far belong to no event.
                deleted.clear()
            if msg is None or msg.get("type") != "message":
                if time.monotonic() - quiet_since >= keepalive:
                    quiet_since = time.monotonic()
                    yield ": keep-alive\n\n"
                continue
            data = str(msg["data"])
            if msg["channel"] == _DEL_CHANNEL:
                if data.startswith(prefix):
                    deleted.add(data)
                continue
            try:
                event = json.loads(data)
            except ValueError:
                continue
            if not isinstance(event, dict) or event.get("wd") != wd:
                continue
            sent += 1
            quiet_since = time.monotonic()
            yield _sse("invalidation", enrich(event, deleted if counting else None), sent)
            deleted.clear()
    except _redis.exceptions.ConnectionError:
        return  # Redis went away (the demo is stopping): end the stream
    finally:
        pubsub.close()
        client.close()


def events_blueprint() -> flask.Blueprint:
    """The ``events`` blueprint (needs the config ``create_app`` sets)."""
    import flask

    from .runs import ApiError, run_context

    bp = flask.Blueprint("events", __name__)

    @bp.route("/runs/<string:runid>/<config>/events", methods=["GET"])
    def run_events(runid: str, config: str) -> Any:
        try:
            wd = run_context(runid, config)
        except ApiError as e:
            return flask.jsonify(Success=False, Error=e.message), e.status
        on, channel = events_on()
        if not on:
            return flask.jsonify(
                Success=False,
                Error="invalidation events are off: start the demo without --no-events "
                "(or set REDISPREP_EVENTS=true for the app and its workers)",
            ), 409
        cfg = flask.current_app.config
        body = stream(
            cfg["REDISPREP_DEMO_REDIS_URL"],
            wd,
            channel,
            float(cfg.get("REDISPREP_DEMO_SSE_KEEPALIVE", KEEPALIVE)),
            cfg["REDISPREP_DEMO_STOP"],
        )
        return flask.Response(
            body,
            mimetype="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return bp
