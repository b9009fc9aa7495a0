"""``import_source``: the replaced system's database into the product, in four steps.

1. Stage: read the source (read-only, one snapshot, batches) into temporary
   tables, transformed row by row (imports/replaced_system.py), and find each
   row's product row from the last run (imports/source_writes.py map_existing).
2. Check: specializations the catalogue lacks, bad rows, emails that collide
   (imports/source_checks.py); with ``skip_invalid`` the bad rows and what
   depends on them are left out.
3. Report: rows found, what is new or changed since the last run, and the
   source's desyncs by kind, counted by the product's one definition
   (licenses/consistency.py) over the staged pairs.
4. Write (not on a dry run, and only when nothing stops it): set-based
   (imports/source_writes.py).

All four in one transaction on the product's database, which a second import
waits for or is refused (imports/single_flight.py).
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import connections

from licenses import consistency
from specializations.catalogue import all_specializations, clear_cache

from . import single_flight, source_checks, source_writes
from .replaced_system import STAGING, Problem, Transform
from .source import TABLES, open_source
from .source_users import user_columns
from .staging import StagingTable

# Each source table's Transform method.
TRANSFORMS = {
    "users": "users",
    "specialization_progress": "progress",
    "user_licenses": "licenses",
    "license_progressions": "history",
}


@dataclass(slots=True)
class SourceReport:
    """What a run found, would change or changed. Tables are the source's names."""

    found: dict[str, int] = field(default_factory=dict)
    unknown_specializations: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    left_out: dict[str, int] = field(default_factory=dict)
    new: dict[str, int] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)
    pairs: int = 0
    desyncs: dict[str, int] = field(default_factory=dict)
    skip_invalid: bool = False
    written: bool = False

    @property
    def stopped(self) -> bool:
        """Whether something in the source stops the import before it writes."""
        return bool(self.unknown_specializations) or (bool(self.problems) and not self.skip_invalid)


def import_source(
    url: str,
    *,
    dry_run: bool = False,
    skip_invalid: bool = False,
    using: str = "default",
    on_progress: Callable[[str, int], None] | None = None,
) -> SourceReport:
    """Read ``url`` (PostgreSQL, read-only) and, unless stopped or ``dry_run``, import it.

    ``on_progress(table, rows_read)`` is called after every batch. One transaction
    on the product's database from the first staged row to the last write (the
    staging tables live in it; a failure leaves nothing), and one import at a time
    (imports/single_flight.py).
    """
    clear_cache()
    users = user_columns(using=using)  # a user model the import cannot fill: refused first
    report = SourceReport(skip_invalid=skip_invalid)
    staging = {
        table: StagingTable(name, columns, using=using)
        for table, (name, columns) in STAGING.items()
    }
    with single_flight.import_transaction(claim=not dry_run, using=using):
        for table in staging.values():
            table.create()
        _run(url, staging, report, users, dry_run=dry_run, using=using, on_progress=on_progress)
        for table in staging.values():  # on a failure the rollback drops them
            table.drop()
    return report


def _run(url, staging, report, users, *, dry_run, using, on_progress) -> None:
    transform = Transform(all_specializations(), users.lengths)
    _stage(url, staging, transform, report, on_progress)
    report.unknown_specializations = sorted(transform.unknown)
    if report.unknown_specializations:
        return
    source_writes.map_existing(using=using)
    for table in staging.values():  # statistics with the product's rows found: for the checks
        table.analyze()
    report.problems = transform.problems + source_checks.cross_row_problems(using=using)
    if report.problems and report.skip_invalid:
        report.left_out = source_checks.leave_out(report.problems, using=using)
    if report.stopped:
        return
    _compare(report, using=using)
    names = (STAGING["specialization_progress"][0], STAGING["user_licenses"][0])
    counts = consistency.count_pairs(tables=names, using=using)
    report.pairs, report.desyncs = counts.total, counts.by_kind
    if not dry_run:
        source_writes.write(using=using)
        report.written = True


def _stage(url, staging, transform, report, on_progress) -> None:
    with open_source(url) as source:
        for table in TABLES:
            rows = getattr(transform, TRANSFORMS[table])
            report.found[table] = 0
            for batch in source.batches(table):
                staging[table].insert(row for row in map(rows, batch) if row is not None)
                report.found[table] += len(batch)
                if on_progress is not None:
                    on_progress(table, report.found[table])


def _compare(report: SourceReport, *, using: str) -> None:
    """New, changed and unchanged staged rows per table (map_existing compared the digests)."""
    with connections[using].cursor() as cursor:
        for table, (name, _) in STAGING.items():
            cursor.execute(
                "SELECT COUNT(*) FILTER (WHERE target_id IS NULL),"
                f" COUNT(*) FILTER (WHERE changed), COUNT(*) FILTER (WHERE NOT changed) FROM {name}"
            )
            report.new[table], report.changed[table], report.unchanged[table] = cursor.fetchone()
