"""Two pipelines (own names, own pipeline folders) loading the same table of the same dataset at
the same moment both succeed, and the table holds exactly what both sent: merge, the union of
their keys; append, both batches once; replace, one batch whole, never a mix.

``LOADBAY_CONCURRENT_TRIALS`` trials per scenario, each with a fresh dataset; see
tests/crash/concurrent.py. Beside other tests, mysql runs merge only (tests/crash/conftest.py).
"""

from __future__ import annotations

import pytest

from tests.crash.harness import CaseResult
from tests.crash.targets import TARGETS, session_destinations

SCENARIOS = [pytest.param(d, w, id=f"{d}-{w}", marks=[pytest.mark.server] if TARGETS[d].needs_server else [])
             for d in session_destinations(("duckdb", "postgres", "mysql")) for w in ("merge", "append", "replace")]
SCENARIOS += [pytest.param(d, w, id=f"{d}-{w}", marks=pytest.mark.skip(
    reason="spark: two pipelines must not load one table at once (the README's Spark section)"))
    for d in session_destinations(("spark",)) for w in ("merge", "append", "replace")]


@pytest.mark.parametrize(("destination", "disposition"), SCENARIOS)
def test_concurrent_pipelines_load_exactly(concurrent_results: list[CaseResult]) -> None:
    failed = [r for r in concurrent_results if r.problems]
    assert not failed, (f"{len(failed)} failing of {len(concurrent_results)} trials:\n"
                        + "\n".join(f"- {r.message()}" for r in failed))
