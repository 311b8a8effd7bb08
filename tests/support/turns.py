"""A TCP proxy that counts request/reply round trips between a client and Redis."""

from __future__ import annotations

import selectors
import socket
import threading
from typing import Any

import redis


class TurnCounter:
    """A TCP proxy in front of Redis that counts round trips: a turn starts when
    a client sends bytes after the server has answered it (or for the first
    time on a connection). A pipeline written in several chunks is one turn."""

    def __init__(self, port: int) -> None:
        self.target = ("127.0.0.1", port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.turns = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self._spawn(self._accept)

    def _spawn(self, fn: Any, *args: Any) -> None:
        t = threading.Thread(target=fn, args=args, daemon=True)
        t.start()
        self.threads.append(t)

    def _accept(self) -> None:
        self.listener.settimeout(0.1)
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                continue
            self._spawn(self._pump, conn)

    def _pump(self, client: socket.socket) -> None:
        upstream = socket.create_connection(self.target)
        sel = selectors.DefaultSelector()
        sel.register(client, selectors.EVENT_READ, upstream)
        sel.register(upstream, selectors.EVENT_READ, client)
        waiting = False  # the client has sent and not been answered yet
        try:
            while not self.stop.is_set():
                for key, _ in sel.select(0.1):
                    src: socket.socket = key.fileobj  # type: ignore[assignment]
                    data = src.recv(65536)
                    if not data:
                        return
                    if src is client and not waiting:
                        waiting = True
                        with self.lock:
                            self.turns += 1
                    elif src is upstream:
                        waiting = False
                    key.data.sendall(data)
        except OSError:
            return
        finally:
            sel.close()
            client.close()
            upstream.close()

    def count(self) -> int:
        with self.lock:
            return self.turns

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(2)
        self.listener.close()


def commandstats(client: redis.Redis[str]) -> dict[str, int]:
    """Calls per command since the last ``CONFIG RESETSTAT`` (INFO/CONFIG left out)."""
    info = client.info("commandstats")
    return {
        k.removeprefix("cmdstat_"): v["calls"]
        for k, v in info.items()
        if k.removeprefix("cmdstat_").split("|")[0] not in {"info", "config"}
    }
