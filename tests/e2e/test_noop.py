"""The no-op destination runs extract and normalize for real and stores nothing."""

from __future__ import annotations

from pathlib import Path

import loadbay
from destinations.testing.conformance.helpers import load_sample


def test_noop_accepts_everything_and_reports_rows(tmp_path: Path) -> None:
    events = load_sample("github_events.json")
    p = loadbay.pipeline("bench", destination="noop", pipelines_dir=tmp_path / "pipes")
    info = p.run(events, table_name="events", write_disposition="merge", primary_key="id")
    info.raise_on_failed_jobs()
    assert info.row_counts["events"] == len(events)
    assert info.row_counts["events__payload__commits"] == sum(len(e["payload"].get("commits", [])) for e in events)
    assert info.location == "nowhere"
    assert p.pending_packages() == []
    assert not list(tmp_path.rglob("*.duckdb"))
