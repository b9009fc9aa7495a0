import json

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections

from specializations.catalogue_load import LoadReport, SpecializationPlan, load_catalogue
from specializations.exceptions import ProgressionError
from specializations.levels import CatalogueNotFollowed

SHOWN_VALUE_LENGTH = 70


class Command(BaseCommand):
    help = (
        "Create or update specializations and their levels from the replaced system's "
        "catalogue files (a directory: every *.json in it), all in one transaction; students "
        "whose totals reach an eased level move up. Exit codes: 0 loaded (or nothing to "
        "change), 1 refused (one line naming the file, the level and the field; nothing written)."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", metavar="PATH", help="Catalogue files or folders.")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Show what would change and how many students would move; write nothing.",
        )
        parser.add_argument(
            "--database", default=DEFAULT_DB_ALIAS, help="Database alias (default: default)."
        )

    def handle(self, *args, paths, dry_run, database, **options):
        if database not in connections:
            raise CommandError(f"--database={database!r} is not a configured database alias")
        try:
            report = load_catalogue(paths, dry_run=dry_run, using=database)
        except (ProgressionError, CatalogueNotFollowed) as exc:
            raise CommandError(str(exc), returncode=1) from exc
        if options["verbosity"] >= 1:
            for plan in report.plans:
                for line in change_lines(plan):
                    self.stdout.write(line)
            for note in report.notes:
                self.stdout.write(self.style.WARNING(f"note: {note}"))
        for plan in report.plans:
            self.stdout.write(summary_line(plan))
        self.stdout.write(self.style.SUCCESS(closing_line(report)))


def change_lines(plan: SpecializationPlan) -> list[str]:
    code = plan.code
    if plan.created:
        levels = len(plan.entry.levels)
        return [f"+ {code}: new specialization {plan.entry.name!r}, {levels} levels"]
    lines = []
    if plan.changes:
        lines.append(f"~ {code}: {_changes(plan.changes)}")
    for level in plan.levels_added:
        lines.append(f"+ {code} level {level.number}: {level.name!r}")
    for level, changes in plan.levels_changed:
        lines.append(f"~ {code} level {level.number}: {_changes(changes)}")
    for number in plan.levels_removed:
        lines.append(f"- {code} level {number}")
    return lines


def summary_line(plan: SpecializationPlan) -> str:
    if plan.created:
        what = f"added ({len(plan.entry.levels)} levels)"
    elif plan.changed:
        parts = [
            f"{len(plan.levels_added)} levels added" if plan.levels_added else "",
            f"{len(plan.levels_changed)} levels changed" if plan.levels_changed else "",
            f"{len(plan.levels_removed)} levels removed" if plan.levels_removed else "",
            "details changed" if plan.changes else "",
        ]
        what = ", ".join(part for part in parts if part)
    else:
        what = "unchanged"
    followed = plan.followed
    verb = "would move up" if followed is not None and followed.dry_run else "moved up"
    moved = 0 if followed is None else followed.students
    line = f"{plan.code}: {what}; {moved} students {verb}"
    if followed is not None and followed.moved:
        line += " (" + ", ".join(f"to level {n}: {c}" for n, c in followed.moved.items()) + ")"
    if followed is not None and followed.out_of_sync:
        line += (
            f"; {followed.out_of_sync} more qualify but their licence was out of sync:"
            " left for repair (check_sync --repair)"
        )
    return line


def closing_line(report: LoadReport) -> str:
    if report.dry_run:
        return "Dry run: nothing was written."
    if not report.changed:
        return "No changes: the catalogue already matches these files."
    return "Loaded."


def _changes(changes: dict) -> str:
    return ", ".join(
        f"{name} {_shown(old)} -> {_shown(new)}" for name, (old, new) in changes.items()
    )


def _shown(value) -> str:
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else repr(value)
    return text if len(text) <= SHOWN_VALUE_LENGTH else text[: SHOWN_VALUE_LENGTH - 3] + "..."
