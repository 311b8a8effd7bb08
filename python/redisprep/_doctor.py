"""``python -m redisprep doctor``: will redisprep work in this process?

Every check is data (:class:`Check`: name, PASS/WARN/FAIL, what was found, how
to fix it); :func:`run_checks` gathers them, :func:`render_text` and
:func:`render_json` print them. The checks use exactly the settings
``RedisPrep`` would (the core resolves them) and only read: the server's data
and configuration are not changed (the facts come from
``_redisprep.server_probe``: PING, INFO, CONFIG GET, SELECT + DBSIZE, an empty
MULTI/EXEC, EVALSHA of no script, CLUSTER INFO).

The command (``redisprep.cli.doctor``) exits 0 when every check passed (WARN
included), 1 when a check failed, 2 on bad arguments.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

from . import _redisprep
from .errors import RedisPrepError

__all__ = ["Check", "exit_status", "render_json", "render_text", "run_checks"]

PASS, WARN, FAIL = "PASS", "WARN", "FAIL"
#: the cache DB when the rules file cannot be read (wepppy's NoDb cache)
DEFAULT_CACHE_DB = 13
#: median PING round trip above which latency is a WARN (ms)
SLOW_MS = 5.0


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    name: str
    status: str
    summary: str
    hint: str = ""
    data: dict[str, Any] = field(default_factory=dict)


def _ok(step: Any) -> Any:
    return step.get("ok") if isinstance(step, dict) else None


def _error(step: Any) -> Optional[str]:
    return step.get("error") if isinstance(step, dict) else None


def _info(text: Any) -> dict[str, str]:
    """``INFO`` text as a dict."""
    out: dict[str, str] = {}
    for line in str(text or "").splitlines():
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            out[k.strip()] = v.strip()
    return out


# ------------------------------------------------------------------ settings


def check_settings(info: dict[str, Any]) -> Check:
    where = info.get("url") or ",".join(info.get("nodes") or []) or info.get("address")
    password = info.get("password") or "not set"
    if info.get("password_file"):
        password += f", file {info['password_file']}"
    prep = f", prep DB {info['prep_db']}" if info["layout"] == "standalone" else ""
    keys = ("layout", "address", "source", "prep_db", "password", "password_file")
    return Check(
        "settings",
        PASS,
        f"{info['layout']} {where} (from {info.get('source')}){prep}; password {password}",
        data={k: info.get(k) for k in keys},
    )


def check_rules() -> tuple[Check, int]:
    """The rules file in force and its cache DB."""
    from ._redisprep import Rules

    try:
        rules = Rules.load(None)
    except RedisPrepError as e:
        first = str(e).splitlines()[0]
        hint = "run `python -m redisprep rules check` to list every error; fix REDISPREP_RULES"
        return Check("rules", FAIL, first, hint), DEFAULT_CACHE_DB
    summary = f"{rules.source}: valid, {len(rules.tasks)} tasks, cache DB {rules.db}"
    data = {"source": rules.source, "tasks": len(rules.tasks), "cache_db": rules.db}
    return Check("rules", PASS, summary, data=data), rules.db


# ---------------------------------------------------------------- connection


def _password_origin(info: dict[str, Any]) -> str:
    """``from REDIS_PASSWORD_FILE`` (from ``"set (from REDIS_PASSWORD_FILE)"``), or ``""``."""
    return str(info.get("password") or "").removeprefix("set (").removesuffix(")")


def _connection_failure(e: Exception, info: dict[str, Any]) -> Check:
    text = str(e)
    words = ("wrongpass", "noauth", "authentication", "invalid password", "invalid username")
    auth = any(w in text.lower() for w in words)
    source = _password_origin(info)
    if auth:
        hint = (
            f"the password {source} is wrong"
            if source
            else "the server needs a password: set REDIS_PASSWORD_FILE (or REDIS_PASSWORD)"
        ) + "; it must match the server's requirepass (or the ACL user's password)"
        return Check("connection", FAIL, f"authentication failed: {text}", hint)
    hint = (
        f"check that a server listens at {info.get('address')} and is reachable from here "
        "(REDIS_URL, or REDIS_HOST/REDIS_PORT; firewall; Docker network)"
    )
    return Check("connection", FAIL, f"cannot reach the server: {text}", hint)


def check_server(probe: dict[str, Any]) -> Check:
    err = _error(probe.get("info_server"))
    if err:
        return Check("server", WARN, f"INFO server: {err}", "allow INFO for the ACL user")
    server = _info(_ok(probe.get("info_server")))
    if "valkey_version" in server or server.get("server_name") == "valkey":
        kind, version = "Valkey", server.get("valkey_version", "?")
    else:
        kind, version = "Redis", server.get("redis_version", "?")
    mode = server.get("redis_mode") or server.get("server_mode") or "?"
    data = {"kind": kind, "version": version, "mode": mode}
    major = int(version.split(".")[0]) if version.split(".")[0].isdigit() else 0
    if 0 < major < 6:
        return Check(
            "server", WARN, f"{kind} {version} ({mode})", "redisprep is tested on 7+", data
        )
    return Check("server", PASS, f"{kind} {version} ({mode})", data=data)


def check_access(probe: dict[str, Any], info: dict[str, Any], cache_db: int) -> list[Check]:
    """The prep and cache DBs, MULTI/EXEC and EVALSHA (standalone); slots and
    EVALSHA (cluster): what ``timestamp()`` needs."""
    out: list[Check] = []
    acl = "grant it to the ACL user (ACL SETUSER <user> +{cmd})"
    if info["layout"] == "standalone":
        dbs = probe.get("dbs") or {}
        for label, db in (("prep DB", info["prep_db"]), ("cache DB", cache_db)):
            step = dbs.get(str(db))
            if _error(step):
                hint = f"SELECT {db} must work: check `databases` in the server config and the ACL"
                out.append(Check(f"{label} {db}", FAIL, f"SELECT {db}: {_error(step)}", hint))
            else:
                keys = (_ok(step) or {}).get("keys")
                out.append(Check(f"{label} {db}", PASS, f"SELECT works ({keys} keys)"))
        err = _error(probe.get("multi_exec"))
        out.append(
            Check("MULTI/EXEC", FAIL, err, acl.format(cmd="multi +exec"))
            if err
            else Check("MULTI/EXEC", PASS, "allowed (timestamp() is one transaction)")
        )
    else:
        out.append(_slots(probe))
    err = _error(probe.get("evalsha"))
    out.append(
        Check("EVALSHA", FAIL, err, acl.format(cmd="evalsha +eval +script"))
        if err
        else Check("EVALSHA", PASS, "allowed (the write scripts run with it)")
    )
    return out


def _slots(probe: dict[str, Any]) -> Check:
    step = probe.get("cluster_info")
    if _error(step):
        return Check("cluster", FAIL, f"CLUSTER INFO: {_error(step)}", "allow CLUSTER INFO")
    ci = _info(_ok(step))
    state, ok = ci.get("cluster_state"), ci.get("cluster_slots_ok")
    data = {"state": state, "slots_ok": ok, "known_nodes": ci.get("cluster_known_nodes")}
    summary = (
        f"cluster_state:{state}, {ok}/16384 slots served, {ci.get('cluster_known_nodes')} nodes"
    )
    if state != "ok" or ok != "16384":
        hint = "every slot must be served: `redis-cli --cluster check` / `--cluster fix`"
        return Check("cluster", FAIL, summary, hint, data)
    return Check("cluster", PASS, summary, data=data)


def check_latency(probe: dict[str, Any]) -> Check:
    pings = [float(p) for p in probe.get("ping_ms") or []]
    median = statistics.median(pings) if pings else 0.0
    data = {
        "connect_ms": probe.get("connect_ms"),
        "median_ms": median,
        "max_ms": max(pings, default=0),
    }
    summary = (
        f"PING median {median:.3f} ms, max {data['max_ms']:.3f} ms over {len(pings)}; "
        f"first connect {float(probe.get('connect_ms') or 0):.3f} ms"
    )
    if median > SLOW_MS:
        hint = "each timestamp() is 1-2 round trips: run redisprep next to the server"
        return Check("latency", WARN, summary, hint, data)
    return Check("latency", PASS, summary, data=data)


def check_persistence(probe: dict[str, Any], info: dict[str, Any]) -> Check:
    config = probe.get("config") or {}
    aof, save = _ok(config.get("appendonly")), _ok(config.get("save"))
    if aof is None:  # CONFIG refused: INFO persistence still tells about the AOF
        aof = "yes" if _info(_ok(probe.get("info_persistence"))).get("aof_enabled") == "1" else None
    fsync = _ok(config.get("appendfsync"))
    data = {"appendonly": aof, "appendfsync": fsync, "save": save}
    parts = [f"appendonly {aof or '?'}" + (f" (appendfsync {fsync})" if fsync else "")]
    parts.append(f"RDB save {save!r}" if save is not None else "RDB save ?")
    summary = ", ".join(parts)
    if aof == "yes" or save:
        return Check("persistence", PASS, summary, data=data)
    if aof is None or save is None:
        hint = "CONFIG GET is refused: check appendonly/save in the server's config yourself"
        return Check("persistence", WARN, summary + ": cannot tell", hint, data)
    replicas = int(info.get("min_replicas") or 0)
    if replicas > 0:
        return Check(
            "persistence", PASS, f"{summary}; {replicas} replica(s) ack each write", data=data
        )
    hint = (
        "nothing persists: a restart empties the server. Prep hashes come back from each "
        "run's redisprep.dump and caches from the .nodb files, but RQ queues and jobs "
        "(DB 9), sessions and locks are lost. Set `appendonly yes` (wepppy: appendfsync "
        "everysec) or REDISPREP_MIN_REPLICAS"
    )
    return Check("persistence", WARN, summary, hint, data)


def check_notifications(probe: dict[str, Any], info: dict[str, Any]) -> Check:
    step = (probe.get("config") or {}).get("notify-keyspace-events")
    events = bool(info.get("events"))
    state = f"events {'on' if events else 'off'} (REDISPREP_EVENTS)"
    data: dict[str, Any] = {"events": events}
    if _error(step):
        hint = "CONFIG GET is refused: make sure notify-keyspace-events has E and g"
        return Check("keyspace events", WARN, f"{state}; notify-keyspace-events ?", hint, data)
    flags = str(_ok(step) or "")
    data["notify_keyspace_events"] = flags
    summary = f"{state}; notify-keyspace-events {flags!r}"
    if "E" in flags and ("g" in flags or "A" in flags):
        return Check("keyspace events", PASS, summary, data=data)
    hint = (
        "the live feed cannot tell which deleted keys were present: set "
        "`notify-keyspace-events Eg` in the server config (docs/LIVE_FEED.md)"
    )
    return Check("keyspace events", WARN, summary, hint, data)


# ----------------------------------------------------------------- run + render


def run_checks() -> list[Check]:
    """Every check, in order; stops after the first check the rest depend on fails."""
    try:
        info: dict[str, Any] = dict(_redisprep.connection_info())
    except RedisPrepError as e:
        hint = "fix the setting named above (docs/DEPLOY.md lists them)"
        return [Check("settings", FAIL, str(e), hint)]
    checks = [check_settings(info)]
    rules, cache_db = check_rules()
    checks.append(rules)
    try:
        probe: dict[str, Any] = _redisprep.server_probe(cache_db)
    except RedisPrepError as e:
        return [*checks, _connection_failure(e, info)]
    origin = _password_origin(info)
    who = f"authenticated with the password {origin}" if origin else "no password needed"
    checks.append(Check("connection", PASS, f"reached {info['address']}, {who}"))
    checks.append(check_server(probe))
    checks.extend(check_access(probe, info, cache_db))
    checks.append(check_latency(probe))
    checks.append(check_persistence(probe, info))
    checks.append(check_notifications(probe, info))
    return checks


def exit_status(checks: Sequence[Check]) -> int:
    return 1 if any(c.status == FAIL for c in checks) else 0


def render_text(checks: Sequence[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        lines.append(f"{c.status}  {c.name:<{width}}  {c.summary}")
        if c.hint:
            lines.append(f"{'':6}{'':<{width}}  fix: {c.hint}")
    counts = {s: sum(c.status == s for c in checks) for s in (PASS, WARN, FAIL)}
    lines.append(f"{counts[PASS]} passed, {counts[WARN]} warning(s), {counts[FAIL]} failed")
    return "\n".join(lines)


def render_json(checks: Sequence[Check]) -> str:
    status = exit_status(checks)
    worst = FAIL if status else (WARN if any(c.status == WARN for c in checks) else PASS)
    doc = {"status": worst, "exit": status, "checks": [asdict(c) for c in checks]}
    return json.dumps(doc, indent=2)
