"""Staging tables: temporary tables in the product's database that a door fills in bulk.

PostgreSQL takes each batch with COPY; SQLite with one multi-row INSERT per
batch. What happens next is set-based SQL between the staging tables and the
product's tables (INSERT ... SELECT, UPDATE ... FROM). Temporary tables live
in this connection only, so two imports never see each other's rows.
"""

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import datetime

from django.db import connections

_TYPES = {
    "id": "bigint",
    "int": "integer",
    "big": "bigint",
    "text": "text",
    "bool": "boolean",
    "time": "timestamp with time zone",
}


class StagingTable:
    """One temporary table: ``columns`` is a sequence of (name, kind) with kinds from _TYPES."""

    def __init__(self, name: str, columns: Sequence[tuple[str, str]], *, using: str = "default"):
        self.name = name
        self.columns = tuple(columns)
        self.connection = connections[using]
        self._times = [i for i, (_, kind) in enumerate(self.columns) if kind == "time"]

    def create(self) -> None:
        self.drop()
        definition = ", ".join(f"{name} {_TYPES[kind]}" for name, kind in self.columns)
        with self.connection.cursor() as cursor:
            cursor.execute(f"CREATE TEMPORARY TABLE {self.name} ({definition})")
            if self.columns[0][1] == "id":
                cursor.execute(f"CREATE INDEX {self.name}_id ON {self.name} ({self.columns[0][0]})")

    def analyze(self) -> None:
        """Statistics for the planner: autovacuum never sees a temporary table."""
        with self.connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {self.name}")

    def drop(self) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {self.name}")

    def insert(self, rows: Iterable[Sequence]) -> int:
        """Rows hold the leading columns; the rest (filled later by SQL) start NULL."""
        postgresql = self.connection.vendor == "postgresql"
        # PostgreSQL reads a datetime's str() as COPY writes it; SQLite needs Django's text.
        rows = list(rows) if postgresql else [self._adapt(row) for row in rows]
        if not rows:
            return 0
        width = len(rows[0])
        names = ", ".join(name for name, _ in self.columns[:width])
        with self.connection.cursor() as cursor:
            if postgresql:
                buffer = io.StringIO()
                csv.writer(buffer, quoting=csv.QUOTE_NOTNULL).writerows(rows)
                buffer.seek(0)
                cursor.cursor.copy_expert(
                    f"COPY {self.name} ({names}) FROM STDIN WITH (FORMAT csv)", buffer
                )
            else:
                # SQLite allows at most 32,766 parameters per statement.
                per_statement = max(1, 30_000 // width)
                row_marks = "(" + ", ".join(["%s"] * width) + ")"
                for start in range(0, len(rows), per_statement):
                    chunk = rows[start : start + per_statement]
                    cursor.execute(
                        f"INSERT INTO {self.name} ({names}) VALUES "
                        + ", ".join([row_marks] * len(chunk)),
                        [value for row in chunk for value in row],
                    )
        return len(rows)

    def _adapt(self, row: Sequence) -> Sequence:
        if not self._times:
            return row
        row = list(row)
        for i in self._times:
            if isinstance(row[i], datetime):
                # SQLite: the text Django itself stores (naive UTC); PostgreSQL: ISO with offset.
                row[i] = self.connection.ops.adapt_datetimefield_value(row[i])
                if not isinstance(row[i], str):
                    row[i] = row[i].isoformat()
        return row
