"""A load killed (SIGKILL) at any moment, then resumed, leaves every batch in the destination
exactly once: no row lost, none doubled, no stale version, children linked to their root.

Per destination and write disposition: one kill at each named crash point (the destination's own
too: Spark's swap of rebuilt tables), and
``LOADBAY_CRASH_KILLS`` kills at random moments (each prints its seed; ``LOADBAY_CRASH_SEED``
replays it). See tests/crash/harness.py for the cases and conftest.py for the settings (beside
other tests, mysql runs merge only).
"""

from __future__ import annotations

import pytest

from tests.crash.harness import CaseResult
from tests.crash.targets import TARGETS, session_destinations

DISPOSITIONS = ("append", "merge", "replace")
SCENARIOS = [pytest.param(d, w, id=f"{d}-{w}", marks=[pytest.mark.server] if TARGETS[d].needs_server else [])
             for d in session_destinations() for w in DISPOSITIONS]


@pytest.mark.parametrize(("destination", "disposition"), SCENARIOS)
def test_killed_load_recovers_exactly(crash_results: list[CaseResult]) -> None:
    failed = [r for r in crash_results if r.problems]
    cases = [r for r in crash_results if r.kind in ("point", "random", "double")]
    assert not failed, (f"{len(failed)} failing of {len(cases)} killed runs:\n"
                        + "\n".join(f"- {r.message()}" for r in failed))
