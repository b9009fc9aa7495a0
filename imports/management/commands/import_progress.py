import sys

from django.core.management.base import BaseCommand, CommandError

from imports.progress_import import import_progress
from imports.replaced_system import SOURCE
from specializations.exceptions import ProgressionError


class Command(BaseCommand):
    help = (
        "Import progress events from a CSV (with a header) or JSON Lines file through the "
        "ledger, set-based, all or nothing: a bad line refuses the file, naming each bad line "
        "and field. Exit 1 when refused."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="The events: .csv (header row) or .jsonl.")
        parser.add_argument(
            "--source",
            help="The ledger source of the events (default: import:<file name>); keys are "
            "unique per source.",
        )
        parser.add_argument(
            "--external-source",
            default=SOURCE,
            help=f"Whose ids the external_id column holds (default: {SOURCE}).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Check the file and report; write nothing."
        )

    def handle(self, *args, file, source, external_source, dry_run, **options):
        bar = sys.stderr.isatty()
        try:
            report = import_progress(
                file,
                source=source,
                external_source=external_source,
                dry_run=dry_run,
                on_progress=self._progress if bar else None,
            )
        except (OSError, ProgressionError) as exc:
            raise CommandError(str(exc)) from exc
        finally:
            if bar:
                sys.stderr.write("\n")
        if report.bad_count:
            for line in report.bad:
                self.stdout.write(f"  {line}")
            if report.bad_count > len(report.bad):
                self.stdout.write(f"  ... and {report.bad_count - len(report.bad)} more")
            raise CommandError(
                f"{file}: {report.bad_count} problems in {report.lines} lines; nothing was written."
            )
        verb = "Imported" if report.written else "Would import"
        self.stdout.write(
            f"{verb} {report.events} events from {report.lines} lines as {report.source}"
            f" ({report.replays} already recorded): {report.pairs} pairs,"
            f" {report.enrolled} newly enrolled, {report.levels_raised} levels raised,"
            f" {report.licences_moved} licences moved, {report.licences_issued} issued."
        )
        if not report.written:
            self.stdout.write("Dry run: nothing was written.")

    def _progress(self, lines: int) -> None:
        sys.stderr.write(f"\rreading: {lines:,} lines".ljust(40))
        sys.stderr.flush()
