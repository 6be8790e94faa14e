"""Load jobs any SQL destination can use."""

from __future__ import annotations

from typing import TYPE_CHECKING

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
