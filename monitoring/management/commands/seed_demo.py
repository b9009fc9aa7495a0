import random
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db.models import F
from django.utils import timezone

from licenses import consistency
from licenses.guard import unguarded
from licenses.models import LicenseProgression, UserLicense
from licenses.services import AUTO_SYNC_REASON, ISSUED_REASON
from specializations.catalogue import all_specializations
from specializations.default_catalogue import install_default_catalogue
from specializations.models import LEDGER_FIELDS, ProgressEvent, SpecializationProgress

DEMO_SOURCE = "seed_demo"  # the ledger source of the demo's opening events
STAFF_USERNAME = "demo"
STAFF_PASSWORD = "academy-demo"
EMAIL_DOMAIN = "demo.academy.example"
INJECTED_PER_KIND = 3
FIRST_NAMES = [
    "Amara",
    "Ben",
    "Chloe",
    "Dario",
    "Elif",
    "Farid",
    "Greta",
    "Hugo",
    "Ines",
    "Jonas",
    "Kofi",
    "Lena",
    "Mateo",
    "Nia",
    "Omar",
]
LAST_NAMES = [
    "Okafor",
    "Lindqvist",
    "Moreau",
    "Rossi",
    "Yilmaz",
    "Haddad",
    "Berg",
    "Laurent",
    "Costa",
    "Weber",
    "Mensah",
]
NOT_DEBUG = (
    "seed_demo creates a staff account with a published password: run it with DEBUG=1 "
    "(as `make demo` does) or pass --force"
)


class Command(BaseCommand):
    help = (
        "Seed demo data: a staff login, the default catalogue if it is missing, about 200 "
        "students with progress and licences in the catalogue's active specializations, and a "
        "few injected desyncs of each kind. Safe to run twice."
    )

    def add_arguments(self, parser):
        parser.add_argument("--students", type=int, default=200, help="Students to create.")
        parser.add_argument(
            "--reset", action="store_true", help="Delete the demo students first, then seed."
        )
        parser.add_argument(
            "--force", action="store_true", help="Seed even when DEBUG is off (never in prod)."
        )
        parser.add_argument("--seed", type=int, default=2024, help="Random seed (repeatable).")

    def handle(self, *args, students, reset, force, seed, **options):
        if not (settings.DEBUG or force):
            raise CommandError(NOT_DEBUG)
        demo_students = get_user_model().objects.filter(email__endswith=f"@{EMAIL_DOMAIN}")
        # One transaction, let through the commit guard on purpose: the demo's desyncs
        # are injected behind the hook's back, as a bad import would.
        with unguarded():
            self.ensure_staff()
            for code in install_default_catalogue():
                self.stdout.write(f"Installed the default catalogue's {code}.")
            if reset:
                self.delete_students(demo_students)
            if demo_students.exists():
                self.stdout.write(
                    f"Demo data already present ({demo_students.count()} students); "
                    "nothing added (--reset starts over)."
                )
            else:
                self.create_students(students, random.Random(seed))
                injected = self.inject_desyncs(demo_students, random.Random(seed + 1))
                self.stdout.write(
                    self.style.SUCCESS(
                        f"Seeded {students} students; injected desyncs: "
                        + ", ".join(f"{kind} {n}" for kind, n in injected.items())
                    )
                )
        self.stdout.write(f"Demo staff login: {STAFF_USERNAME} / {STAFF_PASSWORD}")

    def ensure_staff(self) -> None:
        user, _ = get_user_model().objects.get_or_create(
            username=STAFF_USERNAME, defaults={"email": "demo-staff@academy.example"}
        )
        user.is_staff = user.is_superuser = True
        user.set_password(STAFF_PASSWORD)
        user.save()

    def delete_students(self, demo_students) -> None:
        # The licence history is PROTECTed from cascades: it goes first, on purpose.
        LicenseProgression.objects.filter(license__user__in=demo_students).delete()
        UserLicense.objects.filter(user__in=demo_students).delete()
        SpecializationProgress.objects.filter(student__in=demo_students).delete()
        deleted, _ = demo_students.delete()
        self.stdout.write(f"Reset: removed the demo students ({deleted} rows).")

    def create_students(self, count: int, rng: random.Random) -> None:
        User = get_user_model()
        now = timezone.now()
        users = User.objects.bulk_create(
            User(
                username=f"{rng.choice(FIRST_NAMES).lower()}{i:03d}",
                email=f"student{i:03d}@{EMAIL_DOMAIN}",
                password="!",  # unusable: students do not log in to the demo
            )
            for i in range(1, count + 1)
        )
        for user in users:
            user.first_name, user.last_name = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        User.objects.bulk_update(users, ["first_name", "last_name"])

        catalogue = [info for info in all_specializations().values() if info.is_active]
        progress, licences, history = [], [], []
        for user in users:
            for info in rng.sample(catalogue, k=rng.choice([1, 1, 2, 2, 3])):
                level = min(info.max_level, 1 + int(rng.expovariate(0.5)))
                reached = info.levels[level - 1]
                started = now - timedelta(days=rng.randint(30, 720))
                progress.append(
                    SpecializationProgress(
                        student=user,
                        specialization_id=info.code,
                        current_level=level,
                        total_xp=reached.required_xp + rng.randint(0, 400),
                        completed_sessions=reached.required_sessions + rng.randint(0, 6),
                        theory_hours_completed=reached.theory_hours + rng.randint(0, 10),
                        practice_hours_completed=reached.practice_hours + rng.randint(0, 10),
                        last_activity=now - timedelta(days=rng.randint(0, 29)),
                    )
                )
                licence = UserLicense(
                    user=user,
                    specialization_id=info.code,
                    current_level=level,
                    max_achieved_level=level,
                    started_at=started,
                    last_advanced_at=started + timedelta(days=10 * level) if level > 1 else None,
                )
                licences.append(licence)
                history.extend(
                    LicenseProgression(
                        license=licence,
                        from_level=None if to == 1 else to - 1,
                        to_level=to,
                        reason=ISSUED_REASON if to == 1 else AUTO_SYNC_REASON,
                        created_at=started + timedelta(days=10 * (to - 1)),
                    )
                    for to in range(1, level + 1)
                )
        # bulk_create skips the auto-sync hook: both sides are written here, in step.
        SpecializationProgress.objects.bulk_create(progress)
        # The demo's history starts with one event per row holding its totals, as the
        # ledger's migration opened it for rows that existed before it.
        ProgressEvent.objects.bulk_create(
            ProgressEvent(
                progress=row,
                source=DEMO_SOURCE,
                reason="Demo data",
                occurred_at=row.last_activity,
                level_before=row.current_level,
                level_after=row.current_level,
                **{amount: getattr(row, total) for amount, total in LEDGER_FIELDS},
            )
            for row in progress
        )
        UserLicense.objects.bulk_create(licences)
        LicenseProgression.objects.bulk_create(history)

    def inject_desyncs(self, demo_students, rng: random.Random) -> dict[str, int]:
        """Desyncs the way production gets them: queryset updates and deletes skip the hook."""
        catalogue = all_specializations()
        rows = list(SpecializationProgress.objects.filter(student__in=demo_students).order_by("pk"))
        picked = rng.sample(rows, k=2 * INJECTED_PER_KIND)
        mismatch, missing_progress = picked[:INJECTED_PER_KIND], picked[INJECTED_PER_KIND:]
        for row in mismatch:
            if row.current_level < catalogue[row.specialization_id].max_level:
                # An import that raised progress without touching the licence.
                SpecializationProgress.objects.filter(pk=row.pk).update(
                    current_level=F("current_level") + 1
                )
            else:
                # A restore that brought back an older licence level.
                UserLicense.objects.filter(
                    user_id=row.student_id, specialization_id=row.specialization_id
                ).update(current_level=F("current_level") - 1)
        SpecializationProgress.objects.filter(pk__in=[r.pk for r in missing_progress]).delete()
        # A bulk enrolment that bypassed the hook: progress rows without licences.
        enrolled = {(r.student_id, r.specialization_id) for r in rows}
        students = list(demo_students.order_by("pk").values_list("pk", flat=True))
        new_rows = []
        while len(new_rows) < INJECTED_PER_KIND:
            pair = (rng.choice(students), rng.choice(sorted(catalogue)))
            if pair not in enrolled:
                enrolled.add(pair)
                new_rows.append(
                    SpecializationProgress(student_id=pair[0], specialization_id=pair[1])
                )
        SpecializationProgress.objects.bulk_create(new_rows)
        return {
            consistency.LEVEL_MISMATCH: len(mismatch),
            consistency.MISSING_LICENSE: len(new_rows),
            consistency.MISSING_PROGRESS: len(missing_progress),
        }
