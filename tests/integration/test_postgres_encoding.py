"""PostgreSQL COPY and the session's client encoding: load files are UTF-8 whatever the session says."""

from __future__ import annotations

import pytest

from loadbay.destinations.testing.conformance.helpers import run_ok
from tests.integration.pg_helpers import pg, pg_url, postgres_server, raw_connection  # noqa: F401 - fixtures


@pytest.mark.parametrize("file_format", ["jsonl", "csv", "parquet"])
def test_copy_reads_files_as_utf8_whatever_the_client_encoding(pg, file_format):
    p = pg(credentials=pg_url({"options": "-c client_encoding=LATIN1"}))
    words = ["café", "日本語", "emoji 🙂", "Ωmega"]
    run_ok(p, [{"id": i, "word": w} for i, w in enumerate(words)], table_name="words",
           loader_file_format=file_format)
    conn = raw_connection()  # UTF-8, the test's own
    try:
        with conn.cursor() as cur:
            cur.execute(f'SELECT word FROM "{p.dataset_name}"."words" ORDER BY id')
            assert [r[0] for r in cur.fetchall()] == words
    finally:
        conn.close()
