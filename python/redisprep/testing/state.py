"""Save and restore redisprep's process configuration around one test: the
connection settings (``configure()``) and the runtime rules file."""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass
from typing import Any, Optional

from .. import _redisprep, configure, reset_connections, rules_path, set_rules_path
from .._client import userinfo
from .._types import ConnectionInfo, ConnectionParams

# the configure() options connection_info() reports, restored as they were
_OPTIONS = (
    "connect_timeout",
    "timeout",
    "retries",
    "fsync",
    "events",
    "events_channel",
    "min_replicas",
    "replica_timeout",
)


def url_of(params: ConnectionParams, info: Optional[ConnectionInfo] = None) -> str:
    """The URL that ``configure()`` resolves to ``params`` (with credentials): the
    URL as given (``info["url"]``) when it holds no password."""
    password = params.get("password")
    given = info.get("url") if info is not None else None
    if given is not None and password is None:
        return given
    auth = userinfo(params.get("username") or "", password) if password is not None else ""
    if params["layout"] == "cluster":
        nodes = ",".join(f"{h}:{p}" for h, p in params["nodes"])
        return f"redis+cluster://{auth}{nodes}"
    path = params.get("path")
    if path is not None:
        query = urllib.parse.urlencode({"db": params["db"]})
        return f"unix://{auth}{path}?{query}"
    scheme = "rediss" if params.get("ssl") else "redis"
    query = "?ssl_cert_reqs=none" if params.get("ssl_cert_reqs") == "none" else ""
    return f"{scheme}://{auth}{params['host']}:{params['port']}/{params['db']}{query}"


@dataclass(frozen=True)
class Snapshot:
    """What was in force: ``None`` settings = from the environment (never configured
    successfully); ``rules`` = the runtime rules file, ``None`` for the default."""

    info: Optional[ConnectionInfo]
    params: Optional[ConnectionParams]
    rules: Optional[str]

    @classmethod
    def take(cls) -> Snapshot:
        try:
            info: Optional[ConnectionInfo] = _redisprep.connection_info()
            params: Optional[ConnectionParams] = _redisprep.connection_params()
        except Exception:  # nothing valid in force: restore = back to the environment
            info = params = None
        active = _redisprep.active_rules()
        source = active.source if active is not None else None
        custom = source is not None and os.path.isfile(source) and source != rules_path()
        return cls(info, params, source if custom else None)

    def options(self) -> dict[str, Any]:
        """The ``configure()`` keyword arguments of the settings in force."""
        if self.info is None or self.params is None:
            return {}
        info: dict[str, Any] = dict(self.info)
        options = {k: info[k] for k in _OPTIONS}
        if self.params["layout"] == "standalone":
            options["prep_db"] = info["prep_db"]
            if self.params.get("ssl_ca_certs"):
                options["tls_ca_file"] = self.params.get("ssl_ca_certs")
        return options

    def restore(self) -> None:
        """Back to the snapshot's settings and rules."""
        set_rules_path(self.rules)
        if self.info is None or self.params is None:
            reset_connections()
            return
        configure(url_of(self.params, self.info), **self.options())

    def settings(self) -> tuple[Optional[ConnectionInfo], Optional[str]]:
        """What a comparison needs (no password)."""
        return self.info, self.rules
