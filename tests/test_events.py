"""The optional invalidation event: published inside timestamp()'s transaction,
received by a real subscriber, carrying the checklist of the hash after the
write (evaluated by Redis itself) — which must equal ``preflight()``."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

import redisprep
from redisprep import RedisPrep, TaskEnum

CHANNEL = "redisprep:test-events"


@pytest.fixture
def subscriber(redis_info: Any) -> Iterator[redis.client.PubSub]:
    redisprep.configure(redis_info.url, events=True, events_channel=CHANNEL)
    ps = redis_info.client(0).pubsub(ignore_subscribe_messages=True)
    ps.subscribe(CHANNEL)
    assert ps.get_message(timeout=1.0) is None  # consume the subscribe confirmation
    try:
        yield ps
    finally:
        ps.close()


def next_event(ps: redis.client.PubSub) -> dict[str, Any]:
    msg = ps.get_message(timeout=5.0)
    assert msg is not None, "no event received"
    assert msg["channel"] == CHANNEL
    event: dict[str, Any] = json.loads(msg["data"])
    return event


def test_event_payload_and_checklist(
    run_dir: Path, r13: redis.Redis[str], subscriber: redis.client.PubSub
) -> None:
    wd = str(run_dir)
    r13.set(f"{wd}/climate.nodb", "{}")
    prep = RedisPrep.getInstance(wd)
    prep.timestamp(TaskEnum.abstract_watershed, invalidate=False)
    prep.timestamp(TaskEnum.build_climate)
    event = next_event(subscriber)
    assert event["run_id"] == run_dir.name
    assert event["wd"] == wd
    assert event["task"] == "build_climate"
    assert event["timestamp"] == prep[TaskEnum.build_climate]
    assert f"{wd}/climate.nodb" in event["keys"]
    assert r13.exists(f"{wd}/climate.nodb") == 0
    # The checklist is the one of the hash after the write, in the rules' order.
    pre = prep.preflight()
    assert list(event["checklist"]) == list(pre["checklist"])
    assert event["checklist"] == pre["checklist"]
    assert subscriber.get_message(timeout=0.2) is None, "exactly one event per timestamp"


def test_no_event_when_disabled_or_not_invalidating(
    run_dir: Path, redis_info: Any, subscriber: redis.client.PubSub
) -> None:
    prep = RedisPrep.getInstance(str(run_dir))
    prep.timestamp(TaskEnum.build_climate, invalidate=False)
    prep[TaskEnum.build_soils] = 5  # __setitem__ never invalidates
    assert subscriber.get_message(timeout=0.3) is None
    redisprep.configure(redis_info.url, events=False)
    prep.timestamp(TaskEnum.build_climate)
    assert subscriber.get_message(timeout=0.3) is None


VALUES = [
    None,
    "",
    "x",
    "0",
    "-0",
    "5",
    "05",
    "+5",
    "6",
    "-3",
    " 7",
    "1.0",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "99999999999999999999",
    "1700000000",
    "1700000001",
]

# A rules file exercising every primitive, nested groups and negation.
RULES: dict[str, Any] = {
    "version": 1,
    "db": 13,
    "controllers": {"c": {"keys": ["{wd}/c.nodb"]}},
    "tasks": {t: {"invalidates": []} for t in ["a", "b", "c", "d", "e"]},
    "groups": {
        "m": {"max": ["b", "c"]},
        "f": {"first_present": ["d", "@m", "e"]},
        "mm": {"max": ["@f", "a"]},
    },
    "checks": {
        "exists": {"exists": "timestamps:a"},
        "non_empty": {"non_empty": "timestamps:b"},
        "equals": {"equals": {"field": "attrs:has_sbs", "value": "true"}},
        "newer_all": {"newer": "a", "than_all": ["b", "c"]},
        "newer_any": {"newer": "@f", "than_any": ["a", "e"]},
        "group_of_groups": {"newer": "@mm", "than_all": ["@m"]},
        "combo": {
            "any": [
                {"not": {"newer": "d", "than_all": ["a"]}},
                {"all": [{"exists": "timestamps:e"}, {"newer": "e", "than_any": ["@m", "a"]}]},
            ]
        },
        "present_task": {"present": "a"},
        "present_first": {"present": "@f"},
        "present_max": {"present": "@m"},
        "when": {
            "when": {"equals": {"field": "attrs:has_sbs", "value": "true"}},
            "then": {"newer": "a", "than_all": ["d"]},
        },
        "when_nested": {
            "any": [
                {"not": {"when": {"present": "@mm"}, "then": {"newer": "e", "than_any": ["@f"]}}},
                {"all": [{"not": {"present": "@f"}}, {"newer": "b", "than_all": ["c"]}]},
            ]
        },
    },
}
#: The tasks the newer default checks read (geneva, rusle, roads, wepp's gridded
#: alternative), so random hashes make them true as well as false.
NEWER_CHECK_TASKS = [
    "build_landuse", "build_soils", "build_climate", "run_geneva", "init_sbs_map",
    "build_rusle", "run_wepp_watershed", "run_wepp", "run_roads",
]  # fmt: skip
RULES["tasks"]["a"]["invalidates"] = ["c"]


def test_lua_checklist_matches_preflight_on_random_hashes(
    tmp_path: Path,
    redis_info: Any,
    r0: redis.Redis[str],
    r13: redis.Redis[str],
    subscriber: redis.client.PubSub,
) -> None:
    """Differential: the checklist Redis evaluates in the event (Lua) equals the
    one Rust evaluates in ``preflight()``, on hundreds of random hashes,
    including every integer edge case of wepppy's preflight rule (optional
    sign, ASCII digits, signed 64-bit)."""
    rules_file = tmp_path / "rules.json"
    rules_file.write_text(json.dumps(RULES))
    rng = random.Random(20261125)
    configs = [
        (None, [t.value for t in TaskEnum]),
        (None, NEWER_CHECK_TASKS),
        (str(rules_file), ["a", "b", "c", "d", "e"]),
    ]
    for n, (rules_path, tasks) in enumerate(configs):
        redisprep.set_rules_path(rules_path)
        for i in range(150):
            wd = tmp_path / f"run{i}-{n}"
            wd.mkdir()
            prep = RedisPrep.getInstance(str(wd))
            fields = {
                f"timestamps:{t}": rng.choice(VALUES) for t in rng.sample(tasks, min(8, len(tasks)))
            }
            fields["attrs:has_sbs"] = rng.choice(["true", "True", "false", ""])
            r0.hset(prep.hash_key, mapping={k: v for k, v in fields.items() if v is not None})
            r13.set(f"{wd}/c.nodb" if rules_path else f"{wd}/climate.nodb", "1")
            task = "a" if rules_path else TaskEnum.build_climate.value
            prep.timestamp(task)
            event = next_event(subscriber)
            assert event["checklist"] == prep.preflight()["checklist"], (fields, event)
