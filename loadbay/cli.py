"""The ``loadbay`` command: a thin layer over the same API users call.

    loadbay load examples/github_events.json --pipeline github_events --table events \\
        --destination duckdb --dataset airflow_events --write-disposition merge --primary-key id
    loadbay load 'exports/*.csv.gz' --pipeline shop --table orders
    zcat events.jsonl.gz | loadbay load - --pipeline gh --table events
    loadbay tables github_events --destination duckdb --dataset airflow_events
    loadbay pipeline github_events pending|resume|retry-failed|drop-pending

Exit codes: 0 loaded, 1 a job failed (its package stays on disk), 2 an error, 128 + the signal's
number when SIGINT/SIGTERM stopped the run at a safe point (130, 143).
"""

from __future__ import annotations

import argparse
import sys

import loadbay
from loadbay.common.capabilities import FILE_FORMATS
from loadbay.common.exceptions import LoadbayError, PipelineInterrupted
from loadbay.sources.files import FORMATS


def _pipeline(args: argparse.Namespace) -> loadbay.Pipeline:
    destination = loadbay.destination(args.destination, credentials=args.credentials) if args.credentials \
        else args.destination
    return loadbay.pipeline(args.pipeline, destination=destination, dataset_name=args.dataset,
                            pipelines_dir=args.pipelines_dir)


def table_counts(pipeline: loadbay.Pipeline) -> list[tuple[str, int]]:
    """Every data table the pipeline's schema knows, with its row count in the destination."""
    from sqlglot import exp  # only here: `loadbay --help` and a load's start stay free of sqlglot's import

    out = []
    with pipeline.sql_client() as client:
        for table in pipeline.schema.data_tables():
            count = exp.select(exp.func("count", exp.Star())).from_(client.qualified(table.name))
            rows = client.execute_sql(count)
            out.append((table.name, int(rows[0][0]) if rows else 0))
    return out


def print_tables(pipeline: loadbay.Pipeline) -> None:
    counts = table_counts(pipeline)
    width = max((len(name) for name, _ in counts), default=5)
    print(f"\nTables in dataset {pipeline.dataset_name}:")
    for name, count in counts:
        print(f"  {name:<{width}}  {count:>8} rows")


def cmd_load(args: argparse.Namespace) -> int:
    source = loadbay.files(*args.files, format=args.format, csv_delimiter=args.csv_delimiter)
    table = args.table or source.name
    if not table:
        raise LoadbayError("--table is required: stdin, and sources whose names differ, suggest no table name")
    pipeline = _pipeline(args)
    primary_key = args.primary_key.split(",") if args.primary_key and "," in args.primary_key else args.primary_key
    info = pipeline.run(source, table_name=table, write_disposition=args.write_disposition,
                        primary_key=primary_key, loader_file_format=args.loader_file_format)
    print(info)
    print_tables(pipeline)
    return 1 if info.has_failed_jobs else 0


def cmd_tables(args: argparse.Namespace) -> int:
    print_tables(_pipeline(args))
    return 0


def cmd_pipeline(args: argparse.Namespace) -> int:
    """Package operations on an existing pipeline: list, resume, retry or drop pending packages."""
    pipeline = _pipeline(args)
    if args.action == "pending":
        packages = pipeline.storage.pending()
        for package in packages:
            jobs = {state: len(package.jobs(state)) for state in ("new_jobs", "started_jobs", "completed_jobs",
                                                                   "failed_jobs")}
            print(f"{package.load_id}  " + "  ".join(f"{k.removesuffix('_jobs')}: {v}" for k, v in jobs.items()))
            for job in package.jobs("failed_jobs"):
                error = (package.job_error(job) or "").strip().splitlines()
                print(f"  FAILED {job.path.name}: {error[0] if error else ''}")
        if not packages:
            print(f"pipeline {args.pipeline}: no pending packages")
        return 0
    if args.action == "retry-failed":
        print(f"{pipeline.retry_failed_jobs()} failed job(s) will load on the next run")
        return 0
    if args.action == "drop-pending":
        dropped = pipeline.drop_pending_packages()
        print(f"dropped {len(dropped)} package(s): {', '.join(dropped) or '-'}")
        return 0
    info = pipeline.run()  # resume
    print(info)
    return 1 if info.has_failed_jobs else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loadbay", description="Load rows into SQL databases.")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--destination", default="duckdb", help="name or module:Factory (default duckdb)")
        p.add_argument("--credentials", default=None, help="connection string or DuckDB file path")
        p.add_argument("--dataset", default=None, help="dataset (schema) name; default <pipeline>_dataset")
        p.add_argument("--pipelines-dir", default=None, help="where packages live (default ~/.loadbay/pipelines)")

    load = sub.add_parser("load", help="load files (jsonl, ndjson, json, csv, parquet; a glob, a folder or - for stdin)",
                          description="Load files into one table. Formats by name: .jsonl, .ndjson, .json, .csv, "
                                      ".parquet, the first four also .gz or .zst compressed. A folder loads the "
                                      "files in it; a quoted glob ('data/*.csv') is expanded by loadbay; - reads "
                                      "JSON lines (or --format) from stdin.")
    load.add_argument("files", nargs="+", metavar="FILE", help="file, folder, glob or - (stdin)")
    load.add_argument("--pipeline", required=True)
    load.add_argument("--table", default=None, help="table name; default the file's or folder's name")
    load.add_argument("--write-disposition", default="append", choices=["append", "replace", "merge"])
    load.add_argument("--primary-key", default=None, help="column or comma-separated columns")
    load.add_argument("--format", default=None, choices=list(FORMATS),
                      help="input format of every file (default: from each file's name; jsonl for stdin)")
    load.add_argument("--csv-delimiter", default=",", help="field delimiter of csv input (default ,)")
    load.add_argument("--loader-file-format", default=None, choices=list(FILE_FORMATS),
                      help="format of the load files loadbay writes; default the destination's preferred one")
    common(load)
    load.set_defaults(func=cmd_load)

    tables = sub.add_parser("tables", help="list a pipeline's tables with row counts")
    tables.add_argument("pipeline")
    common(tables)
    tables.set_defaults(func=cmd_tables)

    packages = sub.add_parser("pipeline", help="pending packages of a pipeline: list, resume, retry, drop")
    packages.add_argument("pipeline")
    packages.add_argument("action", choices=["pending", "resume", "retry-failed", "drop-pending"])
    common(packages)
    packages.set_defaults(func=cmd_pipeline)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except PipelineInterrupted as exc:
        print(f"stopped: {exc}", file=sys.stderr)
        return 128 + (exc.signal_number or 2)
    except LoadbayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
