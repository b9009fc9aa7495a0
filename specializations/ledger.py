"""The ledger's promise, as SQL: every progress row's totals equal the sum of its events.

``check_ledger`` counts, in the database and set-based, the progress rows whose
totals differ from their events and samples the differences, for
``check_sync --ledger`` (through ``monitoring.services.run_health_check``). The
sums are read from the ledger index (``progressevent_ledger_idx``: progress id,
then the five amounts), in progress order, and merged with the progress rows in
id order: on PostgreSQL, in the check's merge-join scope, both sides stream and
memory does not grow with the number of rows or events.
"""

from dataclasses import dataclass

from django.db import connections

from .models import LEDGER_FIELDS, ProgressEvent, SpecializationProgress

_PROGRESS = SpecializationProgress._meta.db_table
_EVENT = ProgressEvent._meta.db_table

# (event amount, progress total, the sum's column name in the query)
_COLUMNS = [(amount, total, f"sum_{amount}") for amount, total in LEDGER_FIELDS]
_DIFFERS = " OR ".join(f"p.{total} <> COALESCE(e.{column}, 0)" for _, total, column in _COLUMNS)
_SUMS = (
    "SELECT progress_id, "
    + ", ".join(f"SUM({amount}) AS {column}" for amount, _, column in _COLUMNS)
    + f" FROM {_EVENT} GROUP BY progress_id"
)


@dataclass(frozen=True, slots=True)
class LedgerMismatch:
    """One total of one progress row that is not the sum of its events."""

    user_id: int
    specialization_id: str
    field: str  # the progress row's field, e.g. "total_xp"
    total: int
    ledger_sum: int

    def as_dict(self) -> dict:
        return {
            "user_id": self.user_id,
            "specialization_id": self.specialization_id,
            "field": self.field,
            "total": self.total,
            "ledger_sum": self.ledger_sum,
        }


@dataclass(frozen=True, slots=True)
class LedgerCheck:
    checked: int  # progress rows compared with their events
    mismatches: int  # rows with at least one total that differs
    sample: list[LedgerMismatch]  # a capped sample, one entry per differing total


def _relation(specialization: str | None) -> tuple[str, list]:
    where, params = "", []
    if specialization is not None:
        where, params = " WHERE p.specialization_id = %s", [specialization]
    return f"{_PROGRESS} p LEFT JOIN ({_SUMS}) e ON e.progress_id = p.id{where}", params


def check_ledger(
    *, specialization: str | None = None, sample_size: int = 0, using: str = "default"
) -> LedgerCheck:
    """Count the rows whose totals are not the sum of their events; sample up to
    ``sample_size`` rows of them (each differing total an entry): two queries at most."""
    relation, params = _relation(specialization)
    with connections[using].cursor() as cursor:
        cursor.execute(
            f"SELECT COUNT(*), COUNT(*) FILTER (WHERE {_DIFFERS}) FROM {relation}", params
        )
        checked, mismatches = cursor.fetchone()
        sample = []
        if mismatches and sample_size:
            # No ORDER BY: the scan stops at the first rows it meets.
            columns = ", ".join(f"p.{total}, COALESCE(e.{col}, 0)" for _, total, col in _COLUMNS)
            cursor.execute(
                f"SELECT p.student_id, p.specialization_id, {columns} FROM {relation}"
                f"{' AND' if specialization else ' WHERE'} ({_DIFFERS}) LIMIT %s",
                [*params, sample_size],
            )
            for user_id, code, *values in cursor.fetchall():
                for index, (_, total, _) in enumerate(_COLUMNS):
                    have, summed = values[2 * index], values[2 * index + 1]
                    if have != summed:
                        sample.append(LedgerMismatch(user_id, code, total, have, int(summed)))
    sample.sort(key=lambda m: (m.user_id, m.specialization_id))
    return LedgerCheck(checked=checked, mismatches=mismatches, sample=sample)
