"""Named crash points, for the crash test: the process kills itself (SIGKILL) at a chosen moment.

``LOADBAY_CRASH_AT=job.committed`` kills the process the first time a load job's transaction has
committed; ``LOADBAY_CRASH_AT=job.committed:3`` the third time. ``LOADBAY_CRASH_SIGNAL=SIGINT``
sends that signal instead (to test interrupts at an exact point). Unset (always, outside the
crash test), ``crash_point`` is one dictionary lookup. The points, in the order a load passes them:

- ``normalize.batch``: a batch of rows was normalized and written (the package is not committed)
- ``normalize.committed``: the package was renamed into ``packages/``, nothing loaded yet
- ``job.loaded``: a job's rows are in the destination, its transaction not yet committed
- ``job.committed``: a job's transaction (rows and done-record) committed, its file not yet moved
- ``package.merged``: the merge/replace SQL ran, the ``_lb_loads`` marker not yet written
- ``package.committed``: the package's final transaction committed, its folder not yet removed

Points of one destination's own code (``DESTINATION_POINTS``), where its load is not one transaction:

- ``spark.built``: a merge's or replace's new tables are all built (``<t>__<load id>__new``), none swapped
- ``spark.swapping``: a table renamed to ``<t>__<load id>__old``, its new one not yet renamed into place
"""

from __future__ import annotations

import os
import signal
import threading

ENV = "LOADBAY_CRASH_AT"
SIGNAL_ENV = "LOADBAY_CRASH_SIGNAL"
POINTS = ("normalize.batch", "normalize.committed", "job.loaded", "job.committed", "package.merged",
          "package.committed")
DESTINATION_POINTS = ("spark.built", "spark.swapping")

_counts: dict[str, int] = {}
_lock = threading.Lock()


def _target() -> tuple[str, int] | None:
    spec = os.environ.get(ENV)
    if not spec:
        return None
    name, _, nth = spec.partition(":")
    if name not in POINTS + DESTINATION_POINTS:
        raise ValueError(f"{ENV}={spec!r}: unknown crash point; known: {POINTS + DESTINATION_POINTS}")
    return name, int(nth or 1)


def crash_point(name: str) -> None:
    """Kill this process with SIGKILL if ``LOADBAY_CRASH_AT`` names ``name`` and its count is reached."""
    target = _target()
    if target is None or target[0] != name:
        return
    with _lock:
        _counts[name] = _counts.get(name, 0) + 1
        reached = _counts[name] == target[1]  # once: a signal that is handled must not repeat
    if reached:
        os.kill(os.getpid(), signal.Signals[os.environ.get(SIGNAL_ENV, "SIGKILL")])
