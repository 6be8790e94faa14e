"""Small helpers shared by the destination-specific end-to-end tests."""

from __future__ import annotations

import socket


def closed_port() -> int:
    """A local port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def exception_chain(exc: BaseException | None) -> list[BaseException]:
    """``exc`` and every exception it was raised from or during, outermost first."""
    chain: list[BaseException] = []
    while exc is not None:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    return chain
