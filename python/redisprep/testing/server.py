"""The server a test session uses: a private process (``redisprep._server``) on a
free port, keeping nothing on disk, or a running one given by URL (noproc)."""

from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from .._server import RedisServer


class Server:
    """A Redis/Valkey server for tests: ``url``, ``port``, ``version``; ``process``
    is the private server the plugin started (``None`` in noproc mode)."""

    def __init__(self, url: str, process: Optional[RedisServer] = None) -> None:
        self.url = url
        self.process = process
        self._version: Optional[str] = None

    @classmethod
    def start(
        cls,
        executable: Optional[str] = None,
        password: Optional[str] = None,
        extra_args: Optional[list[str]] = None,
    ) -> Server:
        """Start a private server (``executable`` default ``redis-server``)."""
        from .._server import RedisServer

        process = RedisServer(executable=executable, password=password, extra_args=extra_args)
        try:
            process.start()
        except BaseException:
            process.cleanup()
            raise
        return cls(process.url, process)

    @property
    def port(self) -> int:
        if self.process is not None:
            return self.process.port
        return urllib.parse.urlsplit(self.url).port or 6379

    @property
    def executable(self) -> Optional[str]:
        """The executable started (``None`` in noproc mode)."""
        return self.process.executable if self.process is not None else None

    @property
    def version(self) -> str:
        """``INFO server``'s version: ``valkey_version`` on Valkey, else ``redis_version``."""
        if self._version is None:
            with self.client() as c:
                info: dict[str, Any] = c.info("server")
            self._version = str(info.get("valkey_version") or info["redis_version"])
        return self._version

    def client(self, db: int = 0, decode_responses: bool = True) -> Any:
        """A new redis-py client on database ``db`` (close it, or use ``with``)."""
        import redis

        from .._client import url_with_db

        return redis.Redis.from_url(url_with_db(self.url, db), decode_responses=decode_responses)

    def stop(self, keep: bool = False) -> None:
        """Stop the private server and remove its folder (``keep``: leave it running)."""
        if self.process is not None and not keep:
            self.process.cleanup()

    def __repr__(self) -> str:
        mode = "noproc" if self.process is None else self.process.executable
        return f"<redisprep.testing.Server {self.url} ({mode})>"
