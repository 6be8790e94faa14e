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


def test_noop_takes_every_file_format_compression_and_grouping(tmp_path: Path) -> None:
    """Every format and compression the readers take, a folder, a glob and the CLI, with stdin: the no-op
    destination reports every row of each (it keeps none, so the counts are what there is to check)."""
    import gzip
    import subprocess
    import sys

    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq
    import zstandard

    issues = load_sample("github_issues.json")
    flat = [{"id": i["id"], "title": i["title"], "comments": i["comments"]} for i in issues]
    jsonl = "".join(json.dumps(row) + "\n" for row in flat).encode()
    csv_sink = pa.BufferOutputStream()
    pacsv.write_csv(pa.Table.from_pylist(flat), csv_sink)
    csv = csv_sink.getvalue().to_pybytes()
    zst = zstandard.ZstdCompressor().compress
    files = {"a.jsonl": jsonl, "b.ndjson.gz": gzip.compress(jsonl), "c.jsonl.zst": zst(jsonl),
             "d.json": json.dumps(flat).encode(), "e.json.gz": gzip.compress(json.dumps(flat).encode()),
             "f.csv": csv, "g.csv.gz": gzip.compress(csv), "h.csv.zst": zst(csv)}
    folder = tmp_path / "issues"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    pq.write_table(pa.Table.from_pylist(flat), folder / "i.parquet")
    (tmp_path / "one.json").write_text(json.dumps(flat[0]))
    p = loadbay.pipeline("files", destination="noop", pipelines_dir=tmp_path / "pipes")
    for name in [*files, "i.parquet"]:
        info = p.run(folder / name, table_name="t")
        info.raise_on_failed_jobs()
        assert info.row_counts == {"t": len(flat)}, name
    assert p.run(tmp_path / "one.json", table_name="t").row_counts == {"t": 1}
    assert p.run(folder, table_name="t").row_counts == {"t": len(flat) * 9}
    assert p.run(loadbay.files(str(folder / "*.csv*")), table_name="t").row_counts == {"t": len(flat) * 3}

    cli = [sys.executable, "-m", "loadbay.cli", "load", "-", "--destination", "noop", "--pipeline", "cli",
           "--table", "t", "--pipelines-dir", str(tmp_path / "pipes")]
    done = subprocess.run(cli, input=jsonl, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    assert f"t: {len(flat)}" in done.stdout.decode() and "none to count" in done.stdout.decode()
    cli[4] = str(folder / "h.csv.zst")
    done = subprocess.run(cli, capture_output=True, timeout=120)
    assert done.returncode == 0 and f"t: {len(flat)}" in done.stdout.decode(), done.stderr.decode()
