"""The ``loadbay`` command: a thin layer over the same API users call.

    loadbay load examples/github_events.json --pipeline github_events --table events \\
        --destination duckdb --dataset airflow_events --write-disposition merge --primary-key id
    loadbay load 'exports/*.csv.gz' --pipeline shop --table orders
    zcat events.jsonl.gz | loadbay load - --pipeline gh --table events
    loadbay tables github_events
    loadbay pipeline github_events info|schema|tables|pending|resume|retry-failed|drop-pending
    loadbay pipeline github_events schema --format ddl
    loadbay pipeline github_events drop --tables events --yes
    loadbay pipeline github_events sync --destination postgres --dataset raw   # on a new machine
    loadbay pipeline github_events query "SELECT count(*) FROM events" --format csv

Exit codes: 0 loaded, 1 a job failed (its package stays on disk), 2 an error, 128 + the signal's
number when SIGINT/SIGTERM stopped the run at a safe point (130, 143).
"""

from __future__ import annotations

import argparse
import sys

import loadbay
from loadbay.common.capabilities import FILE_FORMATS, MERGE_STRATEGIES, REPLACE_STRATEGIES
from loadbay.common.exceptions import LoadbayError, PipelineInterrupted
from loadbay.common.schema.types import HINTS
from loadbay.sources.files import FORMATS


def _pipeline(args: argparse.Namespace) -> loadbay.Pipeline:
    destination = loadbay.destination(args.destination, credentials=args.credentials) if args.credentials \
        else args.destination
    return loadbay.pipeline(args.pipeline, destination=destination, dataset_name=args.dataset,
                            pipelines_dir=args.pipelines_dir)


def _attached(args: argparse.Namespace) -> loadbay.Pipeline:
    """The pipeline as its last run left it (``pipeline.json``); flags given win. Creates nothing."""
    from loadbay.inspection import attach

    return attach(args.pipeline, args.pipelines_dir, destination=args.destination, credentials=args.credentials,
                  dataset_name=args.dataset)


def print_tables(pipeline: loadbay.Pipeline) -> None:
    from loadbay.inspection import table_counts

    try:
        counts = table_counts(pipeline)
    except NotImplementedError as exc:  # a destination that runs no SQL (noop) has no tables to count
        print(f"\nTables in dataset {pipeline.dataset_name}: none to count ({exc})")
        return
    width = max((len(name) for name, _ in counts), default=5)
    print(f"\nTables in dataset {pipeline.dataset_name}:")
    for name, count in counts:
        print(f"  {name:<{width}}  {count:>8} rows")
    if not counts:
        print("  (none yet)")


def _names(value: str | None) -> str | list[str] | None:
    """A column, or comma-separated columns, of a flag."""
    return value.split(",") if value and "," in value else value


def cmd_load(args: argparse.Namespace) -> int:
    source = loadbay.files(*args.files, format=args.format, csv_delimiter=args.csv_delimiter)
    table = args.table or source.name
    if not table:
        raise LoadbayError("--table is required: stdin, and sources whose names differ, suggest no table name")
    pipeline = _pipeline(args)
    disposition: str | dict[str, str] = args.write_disposition
    if args.strategy:
        disposition = {"disposition": args.write_disposition, "strategy": args.strategy}
    with pipeline:  # the summary counts through the run's connection: no second connect (and DuckDB start)
        info = pipeline.run(source, table_name=table, write_disposition=disposition,
                            primary_key=_names(args.primary_key), merge_key=_names(args.merge_key),
                            loader_file_format=args.loader_file_format, dry_run=args.dry_run,
                            progress=False if args.quiet else None)
        print(info)
        if args.dry_run:
            return 0
        try:
            print_tables(pipeline)
        except LoadbayError as exc:  # the load is done: a failing summary must not look like a failed load
            print(f"(row counts unavailable: {exc})", file=sys.stderr)
    return 1 if info.has_failed_jobs else 0


def cmd_tables(args: argparse.Namespace) -> int:
    print_tables(_attached(args))
    return 0


def _print_info(pipeline: loadbay.Pipeline) -> None:
    from loadbay.inspection import info

    facts = info(pipeline)
    for key in ("pipeline", "destination", "dataset", "location", "pipelines_dir"):
        print(f"{key + ':':<15}{facts[key]}")
    print("last loads:" if facts["last_loads"] else "last loads:    none")
    for load in facts["last_loads"]:
        print(f"  {load.load_id}  status {load.status}  at {load.inserted_at}  schema {load.schema_version_hash}")
    _print_pending(facts["pending"])


def _print_pending(packages: list[dict]) -> None:
    print("pending:" if packages else "pending:       none")
    for package in packages:
        print(f"  {package['load_id']}  " + "  ".join(f"{k}: {v}" for k, v in package["jobs"].items()))
        for failed in package["failed"]:
            print(f"    FAILED {failed['file']} (table {failed['table']}): {failed['error']}")


def _print_schema(pipeline: loadbay.Pipeline, form: str) -> None:
    import json

    from loadbay.inspection import schema_ddl

    tables = pipeline.schema.data_tables()
    if form == "ddl":
        for statement in schema_ddl(pipeline):
            print(statement + ";")
        return
    if form == "json":
        print(json.dumps([t.to_dict() for t in tables], indent=1))
        return
    flags = tuple(h for h in HINTS if h != "dedup_sort")
    for table in tables:
        parent = f", child of {table.parent}" if table.parent else ""
        strategy = f" {table.strategy}" if table.strategy else ""
        print(f"{table.name} ({table.write_disposition or 'append'}{strategy}{parent})")
        width = max(len(c) for c in table.columns)
        for column in table.columns.values():
            hints = [f for f in flags if getattr(column, f)] + ([] if column.nullable else ["not null"])
            if column.precision is not None:
                hints.append(f"precision {column.precision}" + (f", scale {column.scale}" if column.scale else ""))
            if column.variant_of:
                hints.append(f"variant of {column.variant_of}")
            print(f"  {column.name:<{width}}  {column.data_type:<9}  {' '.join(hints)}".rstrip())


def _print_query(pipeline: loadbay.Pipeline, sql: str, form: str) -> None:
    import csv
    import json

    from loadbay.inspection import query

    names, rows = query(pipeline, sql)
    if form == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(names)
        writer.writerows(rows)
        return
    if form == "json":
        print(json.dumps([dict(zip(names, row)) for row in rows], default=str, indent=1))
        return
    text = [names] + [["NULL" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in text) for i in range(len(names))]
    for n, row in enumerate(text):
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
    print(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")


def _drop(pipeline: loadbay.Pipeline, args: argparse.Namespace) -> int:
    from loadbay.inspection import drop, plan_drop

    tables = [t.strip() for t in args.tables.split(",") if t.strip()] if args.tables else None
    plan = plan_drop(pipeline, tables)
    print(plan.describe())
    if not args.yes:
        if not sys.stdin.isatty():
            raise LoadbayError("drop asks for confirmation on a terminal: pass --yes to drop without asking")
        if input("Drop? [y/N] ").strip().lower() not in ("y", "yes"):
            print("nothing dropped")
            return 1
    for statement in drop(plan):
        print(f"  {statement}")
    print(f"dropped {len(plan.tables)} table(s)")
    return 0


def cmd_pipeline(args: argparse.Namespace) -> int:
    """Inspect or operate an existing pipeline: the same functions as ``loadbay.inspection`` and ``Pipeline``."""
    from loadbay.inspection import pending, sync

    action = args.action
    if action == "sync":
        pipeline = sync(args.pipeline, args.pipelines_dir, destination=args.destination or "duckdb",
                        credentials=args.credentials, dataset_name=args.dataset)
        print(f"pipeline {args.pipeline!r} restored from dataset {pipeline.dataset_name!r}: "
              f"{len(pipeline.schema.data_tables())} table(s) in its schema")
        return 0
    pipeline = _attached(args)
    if (args.sql is not None) != (action == "query"):
        raise LoadbayError("query takes one SQL statement: loadbay pipeline NAME query \"SELECT ...\""
                           if action == "query" else f"{action} takes no further argument (got {args.sql!r})")
    if action == "info":
        _print_info(pipeline)
    elif action == "schema":
        _print_schema(pipeline, args.format or "text")
    elif action == "tables":
        print_tables(pipeline)
    elif action == "query":
        _print_query(pipeline, args.sql, args.format or "table")
    elif action == "pending":
        _print_pending(pending(pipeline))
    elif action == "retry-failed":
        print(f"{pipeline.retry_failed_jobs()} failed job(s) will load on the next run")
    elif action == "drop":
        return _drop(pipeline, args)
    elif action == "drop-pending":
        dropped = pipeline.drop_pending_packages()
        print(f"dropped {len(dropped)} package(s): {', '.join(dropped) or '-'}")
    else:  # resume
        info = pipeline.run()
        print(info)
        return 1 if info.has_failed_jobs else 0
    return 0


ACTIONS = ["info", "schema", "tables", "query", "pending", "resume", "retry-failed", "drop-pending", "drop", "sync"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loadbay", description="Load rows into SQL databases.")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser, destination: str | None = "duckdb") -> None:
        p.add_argument("--destination", default=destination,
                       help="name or module:Factory (default " + (destination or "the pipeline's last run's") + ")")
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
    load.add_argument("--strategy", default=None, choices=sorted({*MERGE_STRATEGIES, *REPLACE_STRATEGIES}),
                      help="merge or replace strategy (merge: delete-insert by default; replace: the destination's "
                           "replace_strategy setting)")
    load.add_argument("--primary-key", default=None, help="column or comma-separated columns")
    load.add_argument("--merge-key", default=None, help="column or comma-separated columns (merge: rows whose key "
                                                        "the new data holds are replaced; scd2: may be closed)")
    load.add_argument("--format", default=None, choices=list(FORMATS),
                      help="input format of every file (default: from each file's name; jsonl for stdin)")
    load.add_argument("--csv-delimiter", default=",", help="field delimiter of csv input (default ,)")
    load.add_argument("--quiet", action="store_true", help="no progress bars (there are none unless stderr is a terminal)")
    load.add_argument("--dry-run", action="store_true",
                      help="normalize and print every statement the load would run; change nothing")
    load.add_argument("--loader-file-format", default=None, choices=list(FILE_FORMATS),
                      help="format of the load files loadbay writes; default the destination's preferred one")
    common(load)
    load.set_defaults(func=cmd_load)

    tables = sub.add_parser("tables", help="list a pipeline's tables with row counts (loadbay pipeline NAME tables)")
    tables.add_argument("pipeline")
    common(tables, destination=None)
    tables.set_defaults(func=cmd_tables)

    inspect = sub.add_parser("pipeline", help="inspect or operate a pipeline that has run: info, schema, tables, "
                                              "query, pending, resume, retry-failed, drop-pending, drop, sync",
                             description="The destination, dataset and credentials (without the password) of "
                                         "the pipeline's last run are used unless flags say otherwise.")
    inspect.add_argument("pipeline")
    inspect.add_argument("action", choices=ACTIONS)
    inspect.add_argument("sql", nargs="?", default=None, help="the statement of query")
    inspect.add_argument("--format", default=None, choices=["text", "ddl", "json", "table", "csv"],
                         help="schema: text (default), ddl or json; query: table (default), csv or json")
    inspect.add_argument("--tables", default=None, help="drop: these tables (comma-separated) and their child "
                                                        "tables only; default every table of the pipeline")
    inspect.add_argument("--yes", action="store_true", help="drop: without asking")
    common(inspect, destination=None)
    inspect.set_defaults(func=cmd_pipeline)
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
    except BrokenPipeError:  # ``loadbay pipeline x query ... | head``: the reader left, nothing is wrong
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
