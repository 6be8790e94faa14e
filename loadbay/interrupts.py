"""SIGINT and SIGTERM during a run: finish what is in flight, start nothing new, report, exit non-zero.

The first signal only sets an event. The loader starts no further job (a job in progress commits
or rolls back as a whole, with its done-record), normalizing stops at the next batch (its package
is discarded, as after any failure), and ``Pipeline.run`` raises ``PipelineInterrupted`` naming
what loaded and what is pending; the next run resumes. A second signal gets the default
behaviour back (KeyboardInterrupt, or termination): still safe, as nothing is applied halfway.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from loadbay.common.exceptions import LoadbayError

logger = logging.getLogger(__name__)

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class RunStopped(LoadbayError):
    """A signal asked the run to stop, and the step raising this stopped at a safe point (a package
    being normalized is discarded; a job waiting for a lock or a retry goes back to new_jobs)."""


@contextmanager
def stop_on_signals(stop: threading.Event, received: list[int]) -> Iterator[None]:
    """Route SIGINT/SIGTERM to ``stop`` (their numbers go to ``received``) while the block runs.

    Only handlers still at their defaults are taken over, and only in the main thread (Python
    delivers signals there): a program with its own handlers keeps them.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {}

    def handle(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        stop.set()
        signal.signal(signum, previous[signum])  # a second one stops at once
        name = signal.Signals(signum).name
        logger.warning("%s received: stopping after the load jobs in progress", name)
        print(f"loadbay: {name} received, stopping at the next safe point (after the load jobs in progress); "
              "send it again to stop at once", file=sys.stderr, flush=True)

    for sig in SIGNALS:
        current = signal.getsignal(sig)
        if current in (signal.default_int_handler, signal.SIG_DFL):
            previous[sig] = current
            signal.signal(sig, handle)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
