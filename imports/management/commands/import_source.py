import sys

from django.core.management.base import BaseCommand, CommandError

from imports.exceptions import ImportRefused, _without_password
from imports.source_import import import_source
from licenses.consistency import VIOLATION_KINDS, Kind

LABELS = {
    "users": "users",
    "specialization_progress": "progress rows",
    "user_licenses": "licences",
    "license_progressions": "history rows",
}
SHOWN_PROBLEMS = 100


class Command(BaseCommand):
    help = (
        "Import users, progress, licences and licence history from the replaced system's "
        "PostgreSQL database (read-only on it). Reports first; stops before writing on "
        "specializations the catalogue lacks or on invalid rows. Exit 1 when stopped."
    )

    def add_arguments(self, parser):
        parser.add_argument("database_url", help="The source: postgresql://user@host/name.")
        parser.add_argument(
            "--dry-run", action="store_true", help="Report what would be imported; write nothing."
        )
        parser.add_argument(
            "--skip-invalid",
            action="store_true",
            help="Leave invalid rows (and rows that depend on them) out, import the rest.",
        )

    def handle(self, *args, database_url, dry_run, skip_invalid, **options):
        self.verbosity = options["verbosity"]
        self.stdout.write(f"Source: {_without_password(database_url)} (read-only)")
        try:
            report = import_source(
                database_url,
                dry_run=dry_run,
                skip_invalid=skip_invalid,
                on_progress=self._progress if sys.stderr.isatty() else None,
            )
        except ImportRefused as exc:
            raise CommandError(str(exc)) from exc
        self._found(report)
        if report.unknown_specializations:
            raise CommandError(
                "specializations not in the catalogue: "
                + ", ".join(report.unknown_specializations)
                + ". Load the catalogue first (manage.py load_catalogue); nothing was written."
            )
        self._problems(report)
        if report.stopped:
            raise CommandError(
                f"{len(report.problems)} invalid source rows; nothing was written"
                " (--skip-invalid imports the rest)."
            )
        self._changes(report)
        self._desyncs(report)
        if report.written:
            self.stdout.write(self.style.SUCCESS("Imported."))
        else:
            self.stdout.write("Dry run: nothing was written.")

    def _progress(self, table: str, rows: int) -> None:
        sys.stderr.write(f"\rreading {LABELS[table]}: {rows:,}".ljust(50))
        sys.stderr.flush()

    def _found(self, report) -> None:
        if sys.stderr.isatty():
            sys.stderr.write("\n")
        found = ", ".join(f"{report.found.get(t, 0)} {label}" for t, label in LABELS.items())
        self.stdout.write(f"Found: {found}")

    def _problems(self, report) -> None:
        if not report.problems:
            return
        heading = "Left out (invalid):" if report.skip_invalid else "Invalid rows:"
        self.stdout.write(heading)
        for problem in report.problems[:SHOWN_PROBLEMS]:
            self.stdout.write(f"  {problem}")
        if len(report.problems) > SHOWN_PROBLEMS:
            self.stdout.write(f"  ... and {len(report.problems) - SHOWN_PROBLEMS} more")
        if report.skip_invalid:
            left = ", ".join(f"{report.left_out[t]} {label}" for t, label in LABELS.items())
            self.stdout.write(f"Left out in all (with the rows that depend on them): {left}")

    def _changes(self, report) -> None:
        verb = "Imported" if report.written else "To import"
        for table, label in LABELS.items():
            self.stdout.write(
                f"{verb} {label}: {report.new[table]} new, {report.changed[table]} changed,"
                f" {report.unchanged[table]} unchanged"
            )

    def _desyncs(self, report) -> None:
        kinds = ", ".join(f"{report.desyncs[kind]} {Kind(kind).label}" for kind in VIOLATION_KINDS)
        self.stdout.write(
            f"Desyncs in the source, by the product's definition: {kinds} (of {report.pairs} pairs)"
        )
        if sum(report.desyncs.values()):
            self.stdout.write(
                "They are imported as they are: check_sync reports them after the import;"
                " repair them with check_sync --repair or the admin."
            )
