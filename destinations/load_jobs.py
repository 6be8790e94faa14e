"""Load jobs any SQL destination can use."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loadbay.common.destination import LoadJob
from loadbay.common.storage.writers import read_insert_values
from loadbay.destinations import statements as sql

if TYPE_CHECKING:
    from loadbay.destinations.job_client import SqlJobClient


class InsertValuesJob(LoadJob):
    """Runs the file's VALUES bodies as INSERT statements, all in one transaction."""

    def run(self, job_client: SqlJobClient) -> None:
        client = job_client.sql_client
        names, bodies = read_insert_values(self.job_file.path)
        with client.begin_transaction():
            for body in bodies:
                client.execute_sql(sql.insert_values(self.target, names, body))


@contextmanager
def arrow_ipc_batches(path: Path) -> Iterator[tuple[Any, Iterator[Any]]]:
    """An Arrow IPC load file, memory-mapped: its Arrow schema and its record batches as they lie on disk (no
    decoding), valid while the block is open. The PostgreSQL COPY and SQLite executemany jobs read it so."""
    import pyarrow as pa
    import pyarrow.ipc

    with pa.memory_map(str(path)) as source:
        reader = pa.ipc.open_file(source)
        yield reader.schema, (reader.get_batch(i) for i in range(reader.num_record_batches))
