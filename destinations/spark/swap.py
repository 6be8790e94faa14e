"""Build-then-swap of one staged root table and its children on Spark, resumable after a crash at any step.

Spark has no transactions and cannot delete from a parquet table, so a package's replace, merge or atomic
append rebuilds each table it changes (``rebuild_jobs.new_contents``) and renames the result into place:

1. build: for every table of the group, ``CREATE TABLE <t>__<load id>__new USING parquet AS <new contents>``
   (each read from the targets as they were: no table is swapped before all are built);
2. swap, table by table: ``ALTER TABLE t RENAME TO <t>__<load id>__old``, then ``<t>__<load id>__new`` to ``t``;
3. (the job client) the ``_lb_loads`` record, then the ``__old`` tables are dropped.

Not atomic: between the renames of one table it is missing (readers fail), and between two tables of a group a
reader sees a new root with old children. A crash leaves (and the next run does): during 1, some ``__new``
tables (dropped and built again); during 2, some tables swapped: an ``__old`` table says the swap began, and the
next run finishes it from the ``__new`` tables left, never building again from targets already swapped (a table
its migration made again in the gap, still empty, is dropped first); after 2
and before the record, every ``__old`` table (nothing to build or swap: the record is written). Names live in the
dataset itself: Spark renames a table within its database only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlglot import exp

from loadbay.common.destination import effective_strategy, strategy_problem
from loadbay.common.exceptions import DestinationTerminalError
from loadbay.common.schema.types import Table
from loadbay.destinations import statements as sql
from loadbay.destinations.rebuild_jobs import REBUILT, new_contents, swap_names
from loadbay.destinations.sql_client import SqlClient
from loadbay.faults import crash_point

if TYPE_CHECKING:
    from loadbay.destinations.job_client import SqlJobClient


@dataclass(frozen=True)
class SwapPlan:
    """The tables of one group, each with the query of its new contents, and where they are swapped."""

    builds: tuple[tuple[str, exp.Query], ...]
    """(table name, new contents), the root first."""
    load_id: str
    max_identifier_length: int

    @classmethod
    def for_group(cls, root: Table, children: Sequence[Table], load_id: str, *, client: SqlJobClient) -> SwapPlan:
        """The plan for a staged ``root``; a strategy Spark has no rebuild for fails the table, naming the ones it has."""
        strategy = effective_strategy(root, client.config.replace_strategy)
        problem = strategy_problem(root.write_disposition, strategy, client.capabilities)
        if problem is None and (root.write_disposition, strategy) not in REBUILT:
            problem = f"{root.write_disposition} strategy {strategy!r} has no rebuild on Spark"
        if problem is not None:
            raise DestinationTerminalError(f"table {root.name!r}: {problem}")
        contents = new_contents(root, children, client.sql_client.qualified,
                                lambda name: client.staging_table(name, load_id), root.write_disposition, strategy)
        return cls(tuple((t.name, contents[t.name]) for t in (root, *children)), load_id,
                   client.capabilities.max_identifier_length)

    @staticmethod
    def leftovers(table_names: Sequence[str], load_id: str, max_length: int) -> list[str]:
        """The ``__new`` and ``__old`` names of ``table_names`` for package ``load_id``."""
        return [name for table in table_names for name in swap_names(table, load_id, max_length)]

    def run(self, client: SqlClient, existing: set[str]) -> list[str]:
        """Build (unless a swap of the group began), then swap what is not swapped yet; returns the SQL run.
        ``existing``: the tables of the dataset (the caller's ``SHOW TABLES``, read once for every group of the
        package: each group renames only its own tables), kept up to date with what this builds, renames and drops."""
        names = {table: swap_names(table, self.load_id, self.max_identifier_length) for table, _ in self.builds}
        rendered: list[str] = []
        if not any(old in existing for _, old in names.values()):  # nothing swapped: build every table afresh
            for table, query in self.builds:
                new = client.qualified(names[table][0])
                left = [sql.drop_tables([new])] if names[table][0] in existing else []  # by an earlier attempt
                rendered += client.execute_many([*left, create_as(new, query)])
                existing.add(names[table][0])
            crash_point("spark.built")
        for table, _ in self.builds:
            new, old = names[table]
            if new not in existing:  # swapped by an earlier run
                continue
            target = client.qualified(table)
            if table in existing and old not in existing:
                rendered += client.execute_many([rename(target, old)])
                existing.add(old)
                crash_point("spark.swapping")
            elif table in existing:  # half swapped, and the next run's migration made the missing table again
                rendered += self.drop_remade(client, target)
            rendered += client.execute_many([rename(client.qualified(new), table)])
            existing.discard(new)
            existing.add(table)
        return rendered

    @staticmethod
    def drop_remade(client: SqlClient, target: exp.Table) -> list[str]:
        """Drop ``target``, made again (empty) by the migration of a run resuming a half-done swap; one holding rows
        was written by someone else meanwhile, and is left for a user to look at."""
        if client.execute_sql(exp.select(exp.Literal.number(1)).from_(target.copy()).limit(1)):
            raise DestinationTerminalError(
                f"table {target.sql(dialect='spark')} was swapped out by an interrupted load, then made again and "
                "written to by another load: move its rows away and drop it, then run the pipeline again (the "
                "interrupted load's new contents wait in the table named like it with __<load id>__new)")
        return client.execute_many([sql.drop_tables([target])])


def create_as(target: exp.Table, query: exp.Query) -> exp.Create:
    """``CREATE TABLE target USING parquet AS query``."""
    return exp.Create(kind="TABLE", this=target.copy(), expression=query.copy(),
                      properties=exp.Properties(expressions=[exp.FileFormatProperty(this=exp.var("parquet"))]))


def rename(table: exp.Table, name: str) -> exp.Alter:
    """``ALTER TABLE db.t RENAME TO db.name`` (same database: Spark renames within one only)."""
    to = exp.Table(this=exp.to_identifier(name, quoted=True), db=table.args["db"].copy())
    return exp.Alter(this=table.copy(), kind="TABLE", actions=[exp.AlterRename(this=to)])
