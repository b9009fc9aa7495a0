import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Prefetch

from specializations.catalogue_files import to_file
from specializations.models import Level, Specialization


class Command(BaseCommand):
    help = (
        "Write the catalogue back in the replaced system's format: one <code>.json per "
        "specialization in DIRECTORY (created if missing), which load_catalogue reads back "
        "unchanged. Exit codes: 0 written, 1 refused (an unknown code, a file not writable)."
    )

    def add_arguments(self, parser):
        parser.add_argument("directory", metavar="DIRECTORY", help="Where to write the files.")
        parser.add_argument(
            "--specialization",
            action="append",
            default=[],
            metavar="CODE",
            help="Only this specialization (repeatable; default: every one).",
        )
        parser.add_argument(
            "--database", default=DEFAULT_DB_ALIAS, help="Database alias (default: default)."
        )

    def handle(self, *args, directory, specialization, database, **options):
        if database not in connections:
            raise CommandError(f"--database={database!r} is not a configured database alias")
        specs = Specialization.objects.using(database).prefetch_related(
            Prefetch("levels", queryset=Level.objects.using(database).order_by("number"))
        )
        if specialization:
            specs = specs.filter(code__in=specialization)
            missing = sorted(set(specialization) - {spec.code for spec in specs})
            if missing:
                raise CommandError(
                    f"--specialization={missing[0]!r} is not a known specialization", returncode=1
                )
        target = Path(directory)
        written = []
        try:
            target.mkdir(parents=True, exist_ok=True)
            for spec in specs:
                path = target / f"{spec.code.lower()}.json"
                text = json.dumps(to_file(spec, spec.levels.all()), ensure_ascii=False, indent=2)
                path.write_text(text + "\n", encoding="utf-8")
                written.append(path)
        except OSError as exc:
            raise CommandError(f"directory={directory!r}: {exc}", returncode=1) from exc
        if options["verbosity"] >= 1:
            for path in written:
                self.stdout.write(str(path))
        self.stdout.write(self.style.SUCCESS(f"Wrote {len(written)} catalogue files."))
