"""Unreachable and unresponsive servers: every call (connection set-up
included) fails within the configured timeout, and a timed-out connection is
never reused, so a late reply can not answer a later command."""

from __future__ import annotations

import select
import socket
from pathlib import Path
from typing import Callable

import pytest

import redisprep
from redisprep import RedisPrep
from support.redis_server import RedisServer, free_port

from .conftest import HANG_BOUND, SilentListener, configure_fast, stalled, timed

Call = Callable[[], object]


def calls_on(wd: str) -> dict[str, Call]:
    """One of each kind of call: construction, reads, writes, transactions."""
    prep = RedisPrep.__new__(RedisPrep, wd)
    return {
        "RedisPrep()": lambda: RedisPrep(wd),
        "getInstance": lambda: RedisPrep.getInstance(wd),
        "timestamp": lambda: prep.timestamp("build_climate"),
        "__getitem__": lambda: prep["build_climate"],
        "remove_timestamp": lambda: prep.remove_timestamp("build_climate"),
        "dump": prep.dump,
        "lazy_load": prep.lazy_load,
        "timestamps_report": prep.timestamps_report,
        "preflight": prep.preflight,
    }


def assert_all_fail_fast(
    wd: str, expected: type[BaseException], only: tuple[str, ...] = ()
) -> dict[str, float]:
    elapsed: dict[str, float] = {}
    for name, call in calls_on(wd).items():
        if only and name not in only:
            continue
        took, err = timed(call)
        assert isinstance(err, expected), f"{name}: {err!r}"
        assert took < HANG_BOUND, f"{name} took {took:.1f} s"
        elapsed[name] = took
    return elapsed


def test_nothing_listening_fails_fast(run_dir: Path) -> None:
    port = free_port()  # bound then released: connections are refused
    configure_fast(f"redis://127.0.0.1:{port}/0", retries=1)
    took = assert_all_fail_fast(str(run_dir), redisprep.RedisConnectionError)
    assert not (run_dir / "redisprep.dump").exists()
    print(f"\nrefused: slowest call {max(took.values()):.2f} s")


def test_unroutable_address_fails_fast(run_dir: Path) -> None:
    # TEST-NET-1 (RFC 5737) is never routed: here the route is refused at once;
    # where SYNs vanish instead, the next test's case applies.
    configure_fast("redis://192.0.2.1:6379/0", retries=1)
    took = assert_all_fail_fast(str(run_dir), redisprep.RedisConnectionError)
    print(f"\nunroutable: slowest call {max(took.values()):.2f} s")


def test_tcp_connect_that_never_completes_fails_within_connect_timeout(run_dir: Path) -> None:
    """A listener that never accepts, its backlog full: the kernel drops the
    SYNs, so the TCP connect itself hangs (a black-holed address)."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    fillers: list[socket.socket] = []
    try:
        srv.bind(("127.0.0.1", 0))
        srv.listen(0)
        addr = srv.getsockname()
        for _ in range(16):  # fill the accept queue until a connect stalls
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex(addr)
            fillers.append(s)
            _, writable, _ = select.select([], [s], [], 0.3)
            if not writable:
                break
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        probe.settimeout(0.5)
        with pytest.raises(socket.timeout):  # precondition: connect() really hangs
            probe.connect(addr)
        probe.close()
        configure_fast(f"redis://127.0.0.1:{addr[1]}/0", retries=1, connect_timeout=0.5)
        took = assert_all_fail_fast(
            str(run_dir), redisprep.RedisTimeoutError, only=("RedisPrep()", "timestamp", "dump")
        )
        _, err = timed(lambda: RedisPrep(str(run_dir)))
        assert "within 0.500 s" in str(err), err
        # the call really waited for the connect timeout (a timeout is not retried)
        assert min(took.values()) >= 0.5
        print(f"\nSYN dropped: slowest call {max(took.values()):.2f} s (connect_timeout 0.5 s)")
    finally:
        for s in fillers:
            s.close()
        srv.close()


@pytest.mark.parametrize(
    ("userinfo", "query", "handshake"),
    [
        ("", "", b""),  # no handshake: the first command is what hangs
        (":s3cret-pw@", "", b"AUTH"),  # AUTH
        ("", "/3", b"SELECT"),  # SELECT (prep DB 3)
        ("alice:s3cret-pw@", "/5", b"AUTH"),  # AUTH user pass + SELECT
        (":s3cret-pw@", "?protocol=resp3", b"HELLO"),  # RESP3: HELLO 3 AUTH ...
    ],
)
def test_listener_that_never_answers_bounds_the_handshake(
    silent_listener: SilentListener, run_dir: Path, userinfo: str, query: str, handshake: bytes
) -> None:
    path = query if query.startswith("/") else "/0" + query
    url = f"redis://{userinfo}127.0.0.1:{silent_listener.port}{path}"
    prep_db = int(path[1:].split("?")[0])
    configure_fast(url, retries=2, prep_db=prep_db)
    took = assert_all_fail_fast(
        str(run_dir), redisprep.RedisTimeoutError, only=("RedisPrep()", "timestamp", "__getitem__")
    )
    sent = silent_listener.all_received()
    assert handshake in sent, sent[:200]
    if handshake:
        # nothing but the handshake was sent: the hang was in connection set-up
        assert b"HSET" not in sent and b"MULTI" not in sent and b"HGET" not in sent
    _, err = timed(lambda: RedisPrep(str(run_dir)))
    assert "s3cret-pw" not in str(err)
    assert "within 0.300 s" in str(err)
    print(f"\nsilent {handshake.decode() or 'no-handshake'}: slowest {max(took.values()):.2f} s")


def test_tls_handshake_that_never_completes_is_bounded(
    silent_listener: SilentListener, run_dir: Path
) -> None:
    """``rediss://`` to a server that accepts and never answers: the TLS
    handshake is part of connection set-up and is bounded the same way."""
    configure_fast(f"rediss://:s3cret-pw@127.0.0.1:{silent_listener.port}/3", retries=2)
    took = assert_all_fail_fast(
        str(run_dir), redisprep.RedisTimeoutError, only=("RedisPrep()", "timestamp", "__getitem__")
    )
    sent = silent_listener.all_received()
    assert sent.startswith(b"\x16\x03"), sent[:10]  # a TLS ClientHello, nothing after it
    assert b"AUTH" not in sent and b"s3cret-pw" not in sent
    _, err = timed(lambda: RedisPrep(str(run_dir)))
    assert "within 0.300 s" in str(err) and "s3cret-pw" not in str(err)
    print(f"\nsilent TLS: slowest {max(took.values()):.2f} s")


def test_debug_sleep_every_call_times_out(make_server: type[RedisServer], run_dir: Path) -> None:
    server = make_server().start()
    configure_fast(server.url, retries=2)
    RedisPrep.getInstance(str(run_dir)).timestamp("build_climate")
    fresh = run_dir.parent / "no-dump-yet"  # RedisPrep() only talks to Redis without a dump
    fresh.mkdir()
    names = [n for n in calls_on(str(run_dir)) if n != "RedisPrep()"] + ["RedisPrep()"]
    done: dict[str, float] = {}
    # One 3 s stall per five calls (each waits 0.3 s) keeps a wide margin.
    for start in range(0, len(names), 5):
        with stalled(server.host, server.port, 3.0):
            for name in names[start : start + 5]:
                call = calls_on(str(fresh if name == "RedisPrep()" else run_dir))[name]
                took, err = timed(call)
                assert isinstance(err, redisprep.RedisTimeoutError), f"{name}: {err!r}"
                assert took < HANG_BOUND, f"{name} took {took:.1f} s"
                done[name] = took
    assert set(done) == set(names)
    # and once the server is awake again, everything works
    RedisPrep.getInstance(str(run_dir)).timestamp("build_soils")
    print(f"\nDEBUG SLEEP: slowest call {max(done.values()):.2f} s")


def test_late_reply_is_never_handed_to_the_next_command(
    make_server: type[RedisServer], run_dir: Path
) -> None:
    server = make_server().start()
    host, port = server.host, server.port
    c = server.client()
    c.hset(
        "abc-def", mapping={"timestamps:a": "111", "timestamps:b": "222", "attrs:loaded": "true"}
    )

    # Control: a raw socket shows the late reply does arrive after the timeout,
    # so a client that kept the socket would read it as the next answer.
    with stalled(host, port, 1.5):
        raw = socket.create_connection((host, port), timeout=0.3)
        raw.sendall(b"*3\r\n$4\r\nHGET\r\n$7\r\nabc-def\r\n$12\r\ntimestamps:a\r\n")
        with pytest.raises(socket.timeout):
            raw.recv(64)
    raw.settimeout(5)
    late = b""
    while not late.endswith(b"111\r\n"):
        chunk = raw.recv(64)
        assert chunk, late
        late += chunk
    raw.close()

    configure_fast(server.url, retries=2)
    prep = RedisPrep.__new__(RedisPrep, str(run_dir))
    assert prep["a"] == 111  # one pooled connection now
    connects = redisprep.stats()["connects"]
    with stalled(host, port, 1.5):
        with pytest.raises(redisprep.RedisTimeoutError):
            prep["a"]  # HGET timestamps:a times out; its reply "111" comes later
    # the stall is over: "111" has been written back to whatever socket asked
    assert prep["b"] == 222, "a late reply was handed to the next command"
    assert prep["a"] == 111
    assert redisprep.stats()["connects"] == connects + 1  # the timed-out socket was dropped

    # The same with a transaction (MULTI ... EXEC) timing out mid-way.
    with stalled(host, port, 1.5):
        with pytest.raises(redisprep.RedisTimeoutError):
            prep.timestamp("c")
    assert prep["b"] == 222
    assert prep.get_rq_job_id("none") is None
    assert c.hget("abc-def", "timestamps:b") == "222"


def test_timeout_bounds_a_whole_transaction_not_each_reply(
    silent_listener: SilentListener, run_dir: Path
) -> None:
    """A timestamp whose rules delete many cache keys is one transaction of
    dozens of replies. Against a server that never answers it must fail after
    about one timeout, not one timeout per reply: redis-rs's own pipeline
    reader waits the full timeout again for every remaining reply (here 40 x
    0.3 s = 12 s; with the default 10 s timeout, minutes)."""
    configure_fast(silent_listener.url, retries=2)
    prep = RedisPrep.__new__(RedisPrep, str(run_dir))
    replies = 4 + sum(len(p["keys"]) for p in prep.explain("project_init"))
    assert replies > 30
    took, err = timed(lambda: prep.timestamp("project_init"))
    assert isinstance(err, redisprep.RedisTimeoutError), repr(err)
    assert b"MULTI" in silent_listener.all_received()
    assert took < 4.0, f"{took:.1f} s for {replies} replies"
    print(f"\n{replies}-reply transaction failed after {took:.2f} s")
