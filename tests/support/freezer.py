"""A TCP proxy that relays to a real server until told to freeze: then it keeps every connection open and lets no
byte through either way, like a stopped server or a firewall that drops packets silently."""

from __future__ import annotations

import selectors
import socket
import threading
from types import TracebackType


class FreezingProxy:
    """``with FreezingProxy(("127.0.0.1", 5432)) as proxy:`` then connect to ``proxy.port``; ``proxy.freeze()``."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.frozen = threading.Event()
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = [self._listener]

    def __enter__(self) -> FreezingProxy:
        self._start(self._accept)
        return self

    def __exit__(self, *exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]) -> None:
        self._stop.set()
        for sock in self._sockets:
            sock.close()

    def freeze(self) -> None:
        self.frozen.set()

    def _start(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            self._sockets += [client, server]
            self._start(self._relay, client, server)

    def _relay(self, client: socket.socket, server: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        selector.register(client, selectors.EVENT_READ, server)
        selector.register(server, selectors.EVENT_READ, client)
        while not self._stop.is_set():
            for key, _ in selector.select(timeout=0.2):
                if self.frozen.is_set():
                    continue  # hold the bytes: the other side waits forever
                try:
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        return
                    key.data.sendall(data)
                except OSError:
                    return
