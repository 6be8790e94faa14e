"""A job client that accepts everything and stores nothing: the pipeline's own cost, measured."""

from __future__ import annotations

from typing import Any

from loadbay.common.destination import JobClient, LoadJob
from loadbay.common.schema.types import Schema
from loadbay.common.storage.package import JobFile
from loadbay.destinations.noop.jobs import NoopJob


class NoopJobClient(JobClient):
    def initialize_storage(self) -> None:
        """Nothing to create."""

    def update_stored_schema(self, schema: Schema, table_names: list[str]) -> list[str]:
        return []

    def prepare_load(self, schema: Schema, table_names: list[str], load_id: str) -> None:
        """No staging."""

    def create_load_job(self, job_file: JobFile, schema: Schema, *, staged_url: str | None = None) -> LoadJob:
        return NoopJob(job_file, schema.tables[job_file.table_name], None, staged_url=staged_url)

    def is_load_completed(self, load_id: str) -> bool:
        return False

    def complete_load(self, load_id: str, schema: Schema, table_names: list[str],
                      state: dict[str, Any] | None = None) -> list[str]:
        """No commit marker: nothing was stored."""
        return []
