"""The no-op destination runs extract and normalize for real and stores nothing."""

from __future__ import annotations

import json
from pathlib import Path

import loadbay
from loadbay.destinations.testing.conformance.helpers import load_sample


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


def test_noop_takes_every_input_shape_through_the_arrow_path(tmp_path: Path) -> None:
    """DataFrames, Arrow data and files by path reach the no-op destination as parquet jobs with every row."""
    import pandas as pd
    import polars as pl
    import pyarrow as pa
    import pyarrow.parquet as pq

    issues = load_sample("github_issues.json")
    labels = sum(len(i["labels"]) for i in issues)
    table = pa.Table.from_struct_array(pa.array(issues))
    pq.write_table(table, tmp_path / "issues.parquet")
    (tmp_path / "issues.jsonl").write_text("".join(json.dumps(issue) + "\n" for issue in issues))
    p = loadbay.pipeline("shapes", destination="noop", pipelines_dir=tmp_path / "pipes")
    inputs = {"arrow": table, "batches": table.to_reader(max_chunksize=7), "polars": pl.from_arrow(table),
              "pandas": pd.DataFrame({"id": [i["id"] for i in issues], "title": [i["title"] for i in issues]}),
              "parquet": tmp_path / "issues.parquet", "jsonl": tmp_path / "issues.jsonl"}
    for name, data in inputs.items():
        info = p.run(data, table_name=name)
        info.raise_on_failed_jobs()
        assert info.row_counts[name] == len(issues), name
        if name != "pandas":
            assert info.row_counts[f"{name}__labels"] == labels, name
        formats = {job.file_format for package in info.load_packages for job in package.jobs}
        assert formats == {"parquet"}, (name, formats)
