"""Helpers shared by the conformance tests: portable queries, value comparison, package surgery.

Nothing here knows which destination runs: SQL is standard, identifiers are quoted by the
destination's own SQL client, and values coming back from a driver are compared after a small,
driver-neutral normalization (Decimal/int, bytes/memoryview, json text/objects).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import loadbay
from loadbay.common.capabilities import COLUMNAR_FORMATS, FILE_FORMATS
from loadbay.common.exceptions import DestinationUndefinedRelation
from loadbay.common.schema.contracts import SchemaContract
from loadbay.common.storage.package import JobFile, LoadPackage
from loadbay.destinations.testing.setups import sample_data_dir
from loadbay.normalize import normalize

ALL_FORMATS = list(FILE_FORMATS)


# -- sample data and the destination's view of it --------------------------------------------------
def load_sample(name: str) -> Any:
    """A sample data file (``github_events.json``, ...) from the sample data folder, parsed."""
    path = sample_data_dir() / name
    if not path.exists():
        pytest.fail(f"sample data not found at {path}; set LOADBAY_SHARED_DATA or pass --lb-data-dir")
    return json.loads(path.read_text(encoding="utf-8"))


def heavy_case(pipeline: loadbay.Pipeline, full: Any, capped: Any) -> Any:
    """``full`` (the case as written), or ``capped`` on a destination whose statements are each a distributed job
    (``capabilities.costly_statements``: Spark): a heavy case there costs a minute of the suite for what a smaller
    one shows as well. The capped case must still reach what the test is about."""
    return capped if pipeline.capabilities.costly_statements else full


GITHUB_EVENT_TYPES_CAPPED = ("PushEvent", "IssuesEvent", "IssueCommentEvent", "WatchEvent", "ForkEvent")
"""The event types kept where statements are costly: 42 of the 100 events, 4 of the 7 tables (each pull-request
type adds the same three child tables), lists under structs (``payload__issue__labels``) included."""


def github_events(pipeline: loadbay.Pipeline) -> list[dict[str, Any]]:
    """``github_events.json``, capped by ``heavy_case`` to the types of ``GITHUB_EVENT_TYPES_CAPPED``."""
    events = load_sample("github_events.json")
    return heavy_case(pipeline, events, [e for e in events if e["type"] in GITHUB_EVENT_TYPES_CAPPED])


def query(pipeline: loadbay.Pipeline, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` run on the pipeline's dataset."""
    with pipeline.sql_client() as client:
        return client.execute_sql(sql, *params) or []


def table_columns(pipeline: loadbay.Pipeline, table: str) -> dict[str, str]:
    """Live column name → loadbay data type of ``table`` as the destination reports it."""
    with pipeline.sql_client() as client:
        live = client.table_columns([table]).get(table, [])
    mapper_client = pipeline.destination.client(pipeline.config)
    return {name: mapper_client.type_mapper.from_db_type(db_type, p, s)[0] for name, db_type, p, s, _ in live}


def drop_datasets(p: loadbay.Pipeline) -> None:
    """Drop the pipeline's dataset and its staging twin (a server keeps them otherwise)."""
    with p.sql_client() as client:
        client.drop_dataset(p.dataset_name)
        client.drop_dataset(p.config.staging_dataset_name)


# -- capabilities ------------------------------------------------------------------------------
def require_format(p: loadbay.Pipeline, file_format: str) -> None:
    supported = p.capabilities.supported_loader_file_formats
    if file_format not in supported:
        pytest.skip(f"{p.destination.destination_type} does not load {file_format!r} files "
                    f"(supported: {supported})")


def require_replace_strategy(p: loadbay.Pipeline, strategy: str) -> None:
    supported = p.capabilities.replace_strategies
    if strategy not in supported:
        pytest.skip(f"{p.destination.destination_type} has no replace strategy {strategy!r} "
                    f"(supported: {supported})")


def wide_int_type(p: loadbay.Pipeline, value: int) -> str:
    """Where an integer beyond 64 bits lands: decimal up to the destination's precision, text past it."""
    return "decimal" if len(str(abs(value))) <= p.capabilities.max_decimal_precision else "text"


# -- SQL -----------------------------------------------------------------------------------------
def ident(p: loadbay.Pipeline, name: str) -> str:
    """``name`` quoted the way the destination quotes identifiers (no connection needed)."""
    client = p.destination.sql_client(p.config)
    return client.render(client.identifier(name))


def count(p: loadbay.Pipeline, table: str) -> int:
    return int(query(p, f"SELECT count(*) FROM {ident(p, table)}")[0][0])


def run_ok(p: loadbay.Pipeline, data: Any = None, **kwargs: Any) -> loadbay.LoadInfo:
    info = p.run(data, **kwargs)
    info.raise_on_failed_jobs()
    return info


# -- reading rows back ------------------------------------------------------------------------------
def select(p: loadbay.Pipeline, table: str, *columns: str, order_by: Sequence[str] = ()) -> list[tuple[Any, ...]]:
    """``columns`` of every row of ``table``, ordered by ``order_by`` (default: by the selected columns)."""
    names = ", ".join(ident(p, c) for c in columns)
    order = ", ".join(ident(p, c) for c in (order_by or columns))
    return query(p, f"SELECT {names} FROM {ident(p, table)} ORDER BY {order}")


def by_id(p: loadbay.Pipeline, table: str, *columns: str) -> dict[int, tuple[Any, ...]]:
    """``{id: (column values...)}`` of ``table``."""
    names = ", ".join(ident(p, c) for c in ("id", *columns))
    return {as_int(row[0]): tuple(row[1:]) for row in query(p, f"SELECT {names} FROM {ident(p, table)}")}


def count_or_none(p: loadbay.Pipeline, table: str) -> int | None:
    """Rows of ``table``, or None when it (or its dataset) does not exist."""
    try:
        return count(p, table)
    except DestinationUndefinedRelation:
        return None


def values_of(p: loadbay.Pipeline, table: str) -> list[Any]:
    """The ``value`` column of a child table of scalars, in list order."""
    return [row[0] for row in query(p, f"SELECT {ident(p, 'value')} FROM {ident(p, table)} "
                                       f"ORDER BY {ident(p, '_lb_root_id')}, {ident(p, '_lb_list_idx')}")]


def children(p: loadbay.Pipeline, child: str = "t__items", root: str = "t", key: str = "id") -> dict[Any, list[Any]]:
    """``{root key: [child values in list order]}``, joined through ``_lb_parent_id`` (an orphan drops out)."""
    r, c = ident(p, "r"), ident(p, "c")
    sql = (f"SELECT {r}.{ident(p, key)}, {c}.{ident(p, 'value')} FROM {ident(p, root)} {r} "
           f"JOIN {ident(p, child)} {c} ON {c}.{ident(p, '_lb_parent_id')} = {r}.{ident(p, '_lb_id')} "
           f"ORDER BY {r}.{ident(p, key)}, {c}.{ident(p, '_lb_list_idx')}")
    out: dict[Any, list[Any]] = {}
    for root_key, value in query(p, sql):
        out.setdefault(root_key, []).append(value)
    return out


def orphans(p: loadbay.Pipeline, child: str, root: str = "t") -> int:
    """Rows of ``child`` whose root row (``_lb_root_id``) is gone."""
    r, c = ident(p, "r"), ident(p, "c")
    return int(query(p, f"SELECT count(*) FROM {ident(p, child)} {c} WHERE NOT EXISTS (SELECT 1 FROM "
                        f"{ident(p, root)} {r} WHERE {r}.{ident(p, '_lb_id')} = {c}.{ident(p, '_lb_root_id')})")[0][0])


# -- values ---------------------------------------------------------------------------------------
def as_int(value: Any) -> int | None:
    """An integer read back from any driver (int, Decimal with zero fraction, numeric text)."""
    if value is None:
        return None
    d = Decimal(str(value)) if not isinstance(value, Decimal) else value
    assert d == d.to_integral_value(), f"{value!r} is not an integer"
    return int(d)


def as_bytes(value: Any) -> bytes | None:
    return None if value is None else bytes(value)


def as_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, (str, bytes)) else value


def as_bool(value: Any) -> bool:
    assert value in (True, False, 0, 1), f"{value!r} is not a boolean"
    return bool(value)


def as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    return date.fromisoformat(value) if isinstance(value, str) else value


def as_time(value: Any) -> time:
    if isinstance(value, timedelta):  # some drivers return TIME as a duration
        return (datetime.min + value).time()
    return time.fromisoformat(value) if isinstance(value, str) else value


def as_utc(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


# -- packages on disk ---------------------------------------------------------------------------
def normalize_only(p: loadbay.Pipeline, data: Any, table_name: str, *, loader_file_format: str | None = None,
                   **hints: Any) -> LoadPackage:
    """Extract and normalize ``data`` into a committed package without loading it."""
    return normalize_resources(p, [loadbay.resource(data, name=table_name, **hints)],
                               loader_file_format=loader_file_format)


def normalize_resources(p: loadbay.Pipeline, resources: list[loadbay.Resource], *,
                        loader_file_format: str | None = None) -> LoadPackage:
    """Normalize ``resources`` into one committed package and stop there, like a run that crashed
    right after normalizing.

    Mirrors ``Pipeline._normalize``: the same normalize() call with the pipeline's schema, storage
    and settings, and the evolved schema saved as the pipeline's own.
    """
    file_format = loader_file_format or p.capabilities.preferred_loader_file_format
    p._bind_cursors(resources)  # incremental cursors start where the pipeline's state says
    package, schema = normalize(resources, p.schema, p.capabilities, p.storage, file_format=file_format,
                                contract=SchemaContract(), batch_size=p.settings.batch_size,
                                file_max_items=p.settings.file_max_items, atomic_appends=p.settings.atomic_appends,
                                columnar_format=p.capabilities.columnar_format(loader_file_format))
    p._save_schema(schema)
    return package


def staging_tables(p: loadbay.Pipeline, load_id: str) -> set[str]:
    """Names of the staging tables package ``load_id`` has in the destination (private to it)."""
    from loadbay.destinations.job_client import staging_table_name

    with p.destination.client(p.config) as client:
        names = {staging_table_name(t, load_id, p.capabilities.max_identifier_length): t for t in p.schema.tables}
        return {names[n] for n in client.sql_client.table_columns(list(names), staging=True)}


def read_columnar(path: Path, file_format: str) -> Any:
    """A parquet or Arrow IPC load file as a pyarrow Table (read whole: the file may be rewritten next)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if file_format == "parquet":
        return pq.read_table(path)
    with pa.OSFile(str(path), "rb") as source:
        return pa.ipc.open_file(source).read_all()


def write_columnar(table: Any, path: Path, file_format: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if file_format == "parquet":
        pq.write_table(table, path)
        return
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def file_holding(package: LoadPackage, column: str, value: Any) -> JobFile:
    """The new job file of ``package`` whose ``column`` holds ``value``."""
    found = []
    for job in package.jobs("new_jobs"):
        if job.file_format in COLUMNAR_FORMATS:
            table = read_columnar(job.path, job.file_format)
            hit = column in table.column_names and value in table.column(column).to_pylist()
        else:
            hit = str(value) in job.path.read_bytes().decode("utf-8")
        if hit:
            found.append(job)
    assert len(found) == 1, found
    return found[0]


def replace_value(path: Path, file_format: str, column: str, old: Any, new: Any) -> None:
    """Rewrite one value of ``column`` in a load file: ints and short text, kept the same length
    in text formats so insert_values' byte-length framing stays valid."""
    if file_format in COLUMNAR_FORMATS:
        import pyarrow as pa

        table = read_columnar(path, file_format)
        values = [new if v == old else v for v in table.column(column).to_pylist()]
        arrow_type = pa.string() if isinstance(new, str) else table.schema.field(column).type
        if not isinstance(new, str) and arrow_type == pa.string():  # undoing a corruption: the column's own type
            arrow_type = pa.array([new]).type
            values = [None if v is None else type(new)(v) for v in values]
        values = [str(v) if v is not None and arrow_type == pa.string() else v for v in values]
        idx = table.schema.get_field_index(column)
        write_columnar(table.set_column(idx, column, pa.array(values, arrow_type)), path, file_format)
        return

    def literal(value: Any) -> str:
        if isinstance(value, str):
            return f"'{value}'" if file_format == "insert_values" else f'"{value}"'
        return str(value)

    text = path.read_bytes().decode("utf-8")
    old_lit, new_lit = literal(old), literal(new)
    assert len(old_lit) == len(new_lit), "keep the length: insert_values files are framed by byte length"
    assert text.count(old_lit) == 1, f"{old_lit} must occur exactly once in {path.name}"
    path.write_bytes(text.replace(old_lit, new_lit).encode("utf-8"))
