"""``import_progress``: a file of progress events through the ledger, set-based, all or nothing.

1. Stage the file's lines (imports/progress_file.py) into a temporary table (COPY).
   Then one transaction:
2. Claim the file's ledger source (imports/single_flight.py): a second run of the
   same source waits for this one, then finds its lines recorded.
3. Check every line (imports/progress_checks.py): its student (user id or external
   id), its key (a key already in the ledger, or earlier in the file, with the same
   values is a replay; with other values a conflict) and the running totals (none
   may fall below 0). Any bad line refuses the whole file: nothing is written.
4. The writes (imports/progress_writes.py): the touched progress rows locked as they
   are read (in id order, as the services lock; a licence is locked by the write that
   moves it, after its progress row), the level each event reaches by the catalogue's
   SQL rule, one ledger event per line, the totals and levels, and each touched
   pair's licence moved (or issued) to the progress level with its history row. Every
   touched pair ends in sync; the commit guard stays on.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.db import connections, transaction

from specializations.catalogue import all_specializations, clear_cache
from specializations.services import require_source

from .progress_checks import LINES, check_lines
from .progress_file import LINE_COLUMNS, BadLine, EventFile
from .progress_writes import PAIR_COLUMNS, PAIRS, plan, write
from .replaced_system import SOURCE as REPLACED_SYSTEM
from .single_flight import claim_ledger_source
from .staging import StagingTable

BATCH = 10_000
SHOWN_BAD_LINES = 100
WORK_MEM = "256MB"


@dataclass(slots=True)
class FileReport:
    source: str = ""
    lines: int = 0
    events: int = 0  # new events: written, or to be written on a dry run
    replays: int = 0
    pairs: int = 0
    enrolled: int = 0
    levels_raised: int = 0
    licences_moved: int = 0
    licences_issued: int = 0
    bad: list[BadLine] = field(default_factory=list)  # the first SHOWN_BAD_LINES, by line
    bad_count: int = 0
    written: bool = False


def import_progress(
    path: str | Path,
    *,
    source: str | None = None,
    external_source: str = REPLACED_SYSTEM,
    dry_run: bool = False,
    using: str = "default",
    on_progress: Callable[[int], None] | None = None,
) -> FileReport:
    """Import the events in ``path``; ``source`` names them in the ledger (default
    ``import:<file name>``); external ids are looked up under ``external_source``."""
    path = Path(path)
    report = FileReport(source=require_source(source or f"import:{path.name}"))
    clear_cache()
    catalogue = all_specializations()
    events = EventFile(path, catalogue=catalogue)
    lines = StagingTable(
        LINES, [*LINE_COLUMNS, ("replay", "bool"), ("conflict", "big")], using=using
    )
    pairs = StagingTable(PAIRS, PAIR_COLUMNS, using=using)
    connection = connections[using]
    try:
        lines.create()
        pairs.create()
        bad: list[BadLine] = []
        # Read outside the transaction: the progress a job reports while reading commits.
        staged = _stage(events, lines, bad, on_progress)
        report.lines = staged + len({line.line for line in bad})
        lines.analyze()
        with transaction.atomic(using=using), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # Hashes and sorts of a million lines in memory; no JIT compilation, which
                # costs more than it saves on these statements (figures: BENCHMARKS.md).
                cursor.execute(
                    "SELECT set_config('work_mem', %s, true), set_config('jit', 'off', true)",
                    [WORK_MEM],
                )
            if not dry_run:
                claim_ledger_source(report.source, using=using)
            bad += check_lines(
                cursor,
                source=report.source,
                external_source=external_source,
                external_ids=events.external_ids,
                own_keys=events.own_keys,
            )
            negative, planned = plan(
                cursor, catalogue, lock=not dry_run and not bad, corrections=events.corrections
            )
            bad += negative
            if bad:
                report.bad_count = len(bad)
                report.bad = sorted(bad, key=lambda b: b.line)[:SHOWN_BAD_LINES]
                return report
            report.events, report.replays = planned.events, staged - planned.events
            report.pairs, report.enrolled = planned.pairs, planned.enrolled
            report.levels_raised = planned.levels_raised
            report.licences_moved = planned.licences_moved
            report.licences_issued = planned.licences_issued
            if not dry_run:
                write(cursor, source=report.source, planned=planned)
                report.written = True
        return report
    finally:
        lines.drop()
        pairs.drop()


def _stage(events: EventFile, lines: StagingTable, bad: list[BadLine], on_progress) -> int:
    """The file's good lines into the staging table, a batch at a time; how many."""
    staged, batch = 0, []
    for row in events.rows(bad):
        batch.append(row)
        if len(batch) == BATCH:
            staged += lines.insert(batch)
            batch = []
            if on_progress is not None:
                on_progress(staged)
    return staged + lines.insert(batch)
