"""A TCP proxy in front of a real server, whose answers a test can hold back: a network that stops delivering
(or a server that stops answering) on the connections open at that moment, while new connections still work."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class HoldingProxy:
    """Forwards 127.0.0.1:<port> to ``upstream``; ``hold()`` keeps every answer from then on from the connections
    already open (their requests still reach the server), so a client waits for an answer that never comes."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._held: list[threading.Event] = []
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def hold(self) -> None:
        with self._lock:
            for event in self._held:
                event.set()

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            server = socket.create_connection(self.upstream)
            held = threading.Event()
            with self._lock:
                self._sockets += [client, server]
                self._held.append(held)
            threading.Thread(target=self._pump, args=(client, server, None), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, held), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket, held: threading.Event | None) -> None:
        try:
            while data := source.recv(65536):
                if held is None or not held.is_set():
                    target.sendall(data)
        except OSError:
            pass


@contextmanager
def holding_proxy(host: str, port: int) -> Iterator[HoldingProxy]:
    proxy = HoldingProxy((host, port))
    try:
        yield proxy
    finally:
        proxy.close()
