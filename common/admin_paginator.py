"""A paginator for admin lists over big tables: no full COUNT(*) where it hurts.

Generic admin machinery, no domain in it: the lists of every app use it, so it
lives in common/, below the apps.
"""

import json

from django.core.paginator import Paginator
from django.db import connections
from django.db.models import QuerySet
from django.utils.functional import cached_property


class EstimatedCountPaginator(Paginator):
    """A big list on PostgreSQL is counted from the planner's estimate; ``estimated`` says so.

    ``COUNT(*)`` over a million rows reads them all. An unfiltered table's
    ``pg_class.reltuples`` (kept fresh by autovacuum) and a filtered list's
    planner estimate (EXPLAIN, from the column statistics) are close enough to
    say how many pages there are. Small results are counted exactly.
    """

    estimate_above = 100_000  # rows in an unfiltered table
    filtered_estimate_above = 10_000  # estimated rows of a filtered list

    estimated = False

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if isinstance(queryset, QuerySet) and connections[queryset.db].vendor == "postgresql":
            if queryset.query.where:
                estimate, above = self._planner_rows(queryset), self.filtered_estimate_above
            else:
                estimate, above = self._table_rows(queryset), self.estimate_above
            if estimate is not None and estimate > above:
                self.estimated = True
                return estimate
        return queryset.count()

    @staticmethod
    def _table_rows(queryset) -> int | None:
        return table_rows(queryset.model, using=queryset.db)

    @staticmethod
    def _planner_rows(queryset) -> int:
        plan = json.loads(queryset.order_by().explain(format="json"))
        return int(plan[0]["Plan"]["Plan Rows"])


def table_rows(model, *, using: str = "default") -> int | None:
    """PostgreSQL's estimate of the rows in the model's table; None elsewhere or never analysed."""
    if connections[using].vendor != "postgresql":
        return None
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
            [model._meta.db_table],
        )
        row = cursor.fetchone()
    return row[0] if row and row[0] is not None and row[0] >= 0 else None


# Rows per table up to which a list over a join of the pair's two tables (the desync
# cases, a sync-state filter) is counted exactly (the cost: BENCHMARKS.md, "Admin list
# pages"); a plain table is counted up to EstimatedCountPaginator.estimate_above.
JOIN_COUNT_ROWS = 20_000


def small_tables(*models, using: str = "default") -> bool:
    """Each table small enough (``JOIN_COUNT_ROWS``) to count a join of them exactly.

    Always on SQLite, which serves the demo and the tests; on PostgreSQL, by the
    estimate of each table (one never analysed counts as small).
    """
    if connections[using].vendor != "postgresql":
        return True
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT MAX(reltuples)::bigint FROM pg_class WHERE oid = ANY(%s::regclass[])",
            [[model._meta.db_table for model in models]],
        )
        (rows,) = cursor.fetchone()
    return rows is None or rows <= JOIN_COUNT_ROWS
