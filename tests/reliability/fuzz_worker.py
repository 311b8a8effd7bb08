"""Time-bounded hypothesis fuzzing of the rules parser and the dump loader.

Run by ``test_fuzz.py`` in a subprocess, so that an input which kills the
interpreter (a Rust abort, a segfault) shows as the exit status instead of
taking pytest down. Usage::

    python fuzz_worker.py SECONDS REDIS_URL OUT_DIR

Prints one JSON line of figures. On the first failing input it writes
``OUT_DIR/failure.json`` (target, input, traceback) and exits 1.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import traceback
from typing import Any, Callable

import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import redisprep
from redisprep import RedisPrep, Rules

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    database=None,
    derandomize=False,
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)

stats: dict[str, int] = {}


def count(name: str) -> None:
    stats[name] = stats.get(name, 0) + 1


class Failure(Exception):
    """An input redisprep mishandled."""


# -- strategies ----------------------------------------------------------------

json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=12),
)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
name = st.one_of(
    st.sampled_from(["a", "b", "c", "build_climate", "x.y", "t-1"]), st.text(max_size=5)
)
template = st.lists(
    st.sampled_from(
        [
            "{wd}",
            "{run_id}",
            "{controller}",
            "{",
            "}",
            "{{",
            "}}",
            "/",
            ".nodb",
            "*",
            "?",
            "[",
            "]",
            "\\",
            "x",
            "{bogus}",
            "é",
            ":",
        ]
    ),
    max_size=6,
).map("".join)
controller = st.fixed_dictionaries(
    {"keys": st.lists(template, max_size=3)},
    optional={
        "patterns": st.lists(template, max_size=2),
        "global": st.one_of(st.booleans(), json_scalar),
        "description": st.text(max_size=5),
        "junk": json_value,
    },
)
task = st.fixed_dictionaries(
    {"invalidates": st.one_of(st.lists(name, max_size=3), json_value)},
    optional={"cascades": st.lists(name, max_size=3), "description": json_scalar},
)
operand = st.one_of(name, name.map(lambda n: "@" + n))
field = st.sampled_from(["timestamps:a", "timestamps:b", "attrs:has_sbs", "x"])
check = st.recursive(
    st.one_of(
        st.fixed_dictionaries({"exists": field}),
        st.fixed_dictionaries({"non_empty": field}),
        st.fixed_dictionaries(
            {"equals": st.fixed_dictionaries({"field": field, "value": st.text(max_size=3)})}
        ),
        st.fixed_dictionaries({"newer": operand, "than_all": st.lists(operand, max_size=3)}),
        st.fixed_dictionaries({"newer": operand, "than_any": st.lists(operand, max_size=3)}),
        json_value,
    ),
    lambda inner: st.one_of(
        st.fixed_dictionaries({"all": st.lists(inner, max_size=3)}),
        st.fixed_dictionaries({"any": st.lists(inner, max_size=3)}),
        st.fixed_dictionaries({"not": inner}),
    ),
    max_leaves=8,
)
group = st.one_of(
    st.fixed_dictionaries({"max": st.lists(operand, max_size=3)}),
    st.fixed_dictionaries({"first_present": st.lists(operand, max_size=3)}),
    json_value,
)
rules_doc = st.fixed_dictionaries(
    {"version": st.one_of(st.just(1), json_scalar)},
    optional={
        "db": st.one_of(st.integers(-2, 20), json_scalar),
        "controllers": st.one_of(st.dictionaries(name, controller, max_size=4), json_value),
        "tasks": st.one_of(st.dictionaries(name, task, max_size=4), json_value),
        "groups": st.dictionaries(name, group, max_size=3),
        "checks": st.dictionaries(name, check, max_size=3),
        "description": json_scalar,
        "junk": json_value,
    },
)
run_template = st.tuples(
    st.sampled_from(["{wd}/", "rid:{run_id}:", "{wd}/{controller}", "x-{run_id}/"]),
    template,
).map("".join)


@st.composite
def valid_rules_doc(draw: st.DrawFn) -> dict[str, Any]:
    """A document built to pass validation (so the closure, rendering and
    preflight code run), with one optional random mutation."""
    names = draw(st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), min_size=1, unique=True))
    controllers = {
        n: {
            "keys": draw(st.lists(run_template, min_size=1, max_size=3)),
            "patterns": draw(st.lists(run_template, max_size=2)),
        }
        for n in names
    }
    task_names = draw(st.lists(st.sampled_from(["t1", "t2", "t3", "t4"]), unique=True))
    tasks: dict[str, Any] = {}
    for i, t in enumerate(task_names):
        tasks[t] = {
            "invalidates": draw(st.lists(st.sampled_from(names), unique=True)),
            # cascades only point forward: no cycles
            "cascades": draw(st.lists(st.sampled_from(task_names[i + 1 :] or [t]), unique=True))
            if i + 1 < len(task_names)
            else [],
        }
    doc: dict[str, Any] = {"version": 1, "controllers": controllers, "tasks": tasks}
    if draw(st.booleans()):
        key = draw(st.sampled_from(["version", "db", "controllers", "tasks", "junk"]))
        doc[key] = draw(json_value)
    return doc


hash_value = st.sampled_from(["", "1", "-5", "+7", "017", " 7", "x12", "9" * 25, "true", "False"])


# -- targets -------------------------------------------------------------------


def exercise_rules(text: str) -> None:
    try:
        rules = Rules.from_json(text)
    except redisprep.RulesError:
        count("rules_rejected")
        return
    count("rules_accepted")
    for t in [*rules.tasks, "unknown-task"]:
        rules.controllers_for(t)
        rules.cascades_of(t)
        rules.keys_for(t, "/runs/ab/a*b[c]")
        rules.explain(t)
        rules.explain(t, "relative/run/")
    rules.graph("mermaid")
    rules.graph("dot")


@SETTINGS
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300).map(lambda b: b.decode("latin-1"))))
def fuzz_rules_text(text: str) -> None:
    exercise_rules(text)


@SETTINGS
@given(st.one_of(rules_doc, valid_rules_doc()), st.dictionaries(field, hash_value, max_size=4))
def fuzz_rules_structured(doc: dict[str, Any], hash_: dict[str, str]) -> None:
    exercise_rules(json.dumps(doc))
    try:
        rules = Rules.from_json(json.dumps(doc))
    except redisprep.RulesError:
        return
    rules.evaluate_checks(hash_, explain=True)


def acceptable(value: Any) -> dict[str, str] | None:
    """What legacy + redisprep agree to load: an object of strings or 64-bit integers."""
    if not isinstance(value, dict):
        return None
    out = {}
    for k, v in value.items():
        if isinstance(v, bool) or not isinstance(v, (str, int)):
            return None
        if isinstance(v, int) and not -(2**63) <= v < 2**64:
            return None  # beyond 64 bits: redisprep refuses (legacy would store str(v))
        text = v if isinstance(v, str) else str(v)
        if any(0xD800 <= ord(c) <= 0xDFFF for c in k + text):
            return None  # lone surrogates cannot be stored as UTF-8 (legacy fails too)
        out[k] = text
    return out


class DumpTarget:
    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url, decode_responses=True)
        self.root = tempfile.mkdtemp(prefix="redisprep-fuzz-")
        self.wd = os.path.join(self.root, "fuzz-run")
        os.mkdir(self.wd)
        self.path = os.path.join(self.wd, "redisprep.dump")

    def load(self, data: bytes) -> None:
        self.client.delete("fuzz-run")
        with open(self.path, "wb") as fp:
            fp.write(data)
        prep = RedisPrep.__new__(RedisPrep, self.wd)
        try:
            prep.lazy_load()
            loaded = True
        except redisprep.DumpFormatError:
            loaded = False
        with open(self.path, "rb") as fp:
            if fp.read() != data:
                raise Failure("lazy_load modified the dump file")
        try:
            expected = acceptable(json.loads(data.decode("utf-8")))
        except (UnicodeDecodeError, ValueError, RecursionError):
            expected = None
        got = self.client.hgetall("fuzz-run")
        if loaded:
            count("dump_loaded")
            if expected is None:
                raise Failure("loaded a dump legacy's json.load would not give as str/int values")
            want = {**expected, "attrs:loaded": "true"}
            if got != want:
                raise Failure(f"Redis holds {got!r}, expected {want!r}")
        else:
            count("dump_rejected")
            if got:
                raise Failure(f"a rejected dump still wrote to Redis: {got!r}")
            if expected is not None:
                count("dump_rejected_but_python_reads_it")
                raise Failure("rejected a dump of strings/integers that legacy loads")

    def round_trip(self, d: dict[str, str]) -> None:
        """A valid dump loads exactly, and dump() writes what legacy's json.dump would."""
        self.load(json.dumps(d).encode())
        RedisPrep.__new__(RedisPrep, self.wd).dump()
        with open(self.path, "rb") as fp:
            written = fp.read()
        legacy = json.dumps(self.client.hgetall("fuzz-run")).encode()
        if written != legacy:
            raise Failure(f"dump() wrote {written!r}, legacy writes {legacy!r}")
        count("dump_round_trips")


def dump_bytes_strategy() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=200),
        json_value.map(lambda v: json.dumps(v).encode()),
        st.dictionaries(st.text(max_size=8), json_scalar, max_size=5).map(
            lambda d: json.dumps(d).encode()
        ),
        st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=5).map(
            lambda d: json.dumps(d, ensure_ascii=False).encode("utf-8", "surrogatepass")
        ),
    )


def run(budget: float, url: str, out_dir: str) -> int:
    target = DumpTarget(url)

    @SETTINGS
    @given(dump_bytes_strategy())
    def fuzz_dump_bytes(data: bytes) -> None:
        target.load(data)

    @SETTINGS
    @given(st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=6))
    def fuzz_dump_round_trip(d: dict[str, str]) -> None:
        target.round_trip(d)

    targets: list[tuple[str, Callable[[], None]]] = [
        ("rules_text", fuzz_rules_text),
        ("rules_structured", fuzz_rules_structured),
        ("dump_bytes", fuzz_dump_bytes),
        ("dump_round_trip", fuzz_dump_round_trip),
    ]
    end = time.monotonic() + budget
    rounds = 0
    while time.monotonic() < end:
        for label, fn in targets:
            try:
                fn()
            except BaseException as e:  # PanicException derives from BaseException
                with open(os.path.join(out_dir, "failure.json"), "w") as fp:
                    json.dump(
                        {
                            "target": label,
                            "error": type(e).__name__,
                            "traceback": traceback.format_exc(),
                            "stats": stats,
                        },
                        fp,
                    )
                return 1
            rounds += 1
    stats["rounds"] = rounds
    stats["examples"] = rounds * SETTINGS.max_examples
    print(json.dumps(stats))
    return 0


if __name__ == "__main__":
    sys.exit(run(float(sys.argv[1]), sys.argv[2], sys.argv[3]))
