"""import_source: the replaced system's database (built from its schema) into the product."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db.models import Sum

from imports.models import ImportedRow
from imports.source import open_source
from imports.source_import import import_source
from licenses import consistency
from licenses.models import LicenseProgression, UserLicense
from specializations.models import (
    LEDGER_FIELDS,
    ExternalId,
    ProgressEvent,
    SpecializationProgress,
)
from specializations.selectors import resolve_student
from specializations.services import update_progress
from tests.source_db import ACADEMY

User = get_user_model()


def snapshot() -> dict:
    """Every row the import writes, as plain values."""
    return {
        "users": sorted(
            User.objects.values_list(
                "id",
                "username",
                "first_name",
                "last_name",
                "email",
                "is_staff",
                "is_active",
                "password",
            )
        ),
        "progress": sorted(SpecializationProgress.objects.values_list()),
        "licences": sorted(UserLicense.objects.values_list()),
        "history": sorted(LicenseProgression.objects.values_list()),
        "mapped": sorted(
            ImportedRow.objects.values_list("table", "source_id", "target_id", "digest")
        ),
    }


def imported_user(source_id: int):
    target = ImportedRow.objects.get(table="users", source_id=source_id).target_id
    return User.objects.get(pk=target)


def test_dry_run_reports_the_hand_count_and_writes_nothing(source, academy_catalogue):
    before = snapshot()
    report = import_source(source.url, dry_run=True)
    assert report.found == ACADEMY["found"]
    assert report.pairs == ACADEMY["pairs"]
    assert report.desyncs == ACADEMY["desyncs"]
    assert report.new == ACADEMY["found"]
    assert not report.written and not report.problems
    assert snapshot() == before


def test_dry_run_command_prints_the_report(source, academy_catalogue):
    out = StringIO()
    call_command("import_source", source.url, "--dry-run", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[1:] == [
        "Found: 9 users, 5 progress rows, 5 licences, 5 history rows",
        "To import users: 9 new, 0 changed, 0 unchanged",
        "To import progress rows: 5 new, 0 changed, 0 unchanged",
        "To import licences: 5 new, 0 changed, 0 unchanged",
        "To import history rows: 5 new, 0 changed, 0 unchanged",
        "Desyncs in the source, by the product's definition: 1 level mismatch,"
        " 1 missing licence, 1 missing progress (of 6 pairs)",
        "They are imported as they are: check_sync reports them after the import;"
        " repair them with check_sync --repair or the admin.",
        "Dry run: nothing was written.",
    ]


def test_users_come_with_names_staff_flags_and_unusable_passwords(source, academy_catalogue):
    import_source(source.url)
    admin = imported_user(1)
    assert (admin.username, admin.email) == ("admin@academy.test", "admin@academy.test")
    assert (admin.first_name, admin.last_name) == ("Árvíztűrő", "Tükörfúrógép")
    assert [imported_user(i).is_staff for i in range(1, 6)] == [True, True, True, False, False]
    assert not User.objects.filter(is_superuser=True).exists()
    instructor = imported_user(3)
    assert (instructor.first_name, instructor.last_name) == ("Kovács", "Éva")
    assert imported_user(7).is_active is False
    assert imported_user(8).is_active is True  # NULL at the source: its default
    assert not any(user.has_usable_password() for user in User.objects.all())


def test_progress_rows_keep_totals_and_levels_null_as_zero_and_computed(source, academy_catalogue):
    import_source(source.url)
    anna, cecil = imported_user(4), imported_user(6)
    coach = SpecializationProgress.objects.get(student=anna, specialization="LFA_COACH")
    assert (coach.current_level, coach.total_xp) == (3, 2500)  # NULL level: from 2,500 XP
    empty = SpecializationProgress.objects.get(student=cecil)
    assert (empty.current_level, empty.total_xp, empty.completed_sessions) == (1, 0, 0)
    player = SpecializationProgress.objects.get(student=anna, specialization="GANCUJU_PLAYER")
    assert (player.current_level, player.total_xp, player.completed_sessions) == (2, 1500, 5)


def test_licences_and_history_keep_dates_levels_who_and_why(source, academy_catalogue):
    import_source(source.url)
    dora = UserLicense.objects.get(user=imported_user(7))
    assert (dora.current_level, dora.max_achieved_level, dora.is_active) == (4, 4, False)
    assert dora.started_at.isoformat() == "2024-02-01T10:00:00+00:00"
    anna_player = UserLicense.objects.get(user=imported_user(4), specialization="GANCUJU_PLAYER")
    rows = list(anna_player.progressions.order_by("id"))
    assert [(r.from_level, r.to_level) for r in rows] == [(None, 1), (1, 2)]
    assert [r.advanced_by for r in rows] == [None, imported_user(3)]
    assert [r.reason for r in rows] == ["Licenc kiadva", "Vizsga: sikeres second line"]
    assert rows[0].created_at.isoformat() == "2024-06-01T08:30:00+00:00"
    undated = LicenseProgression.objects.get(license=dora)
    assert undated.created_at == dora.started_at  # no time at the source: the licence's start
    assert undated.reason == "Imported from the replaced system"


def test_desyncs_are_imported_as_they_are_and_counted_alike(source, academy_catalogue):
    report = import_source(source.url)
    counts = consistency.count_pairs()
    assert (counts.total, counts.by_kind) == (report.pairs, report.desyncs)
    assert counts.by_kind == ACADEMY["desyncs"]


def test_a_second_run_on_an_unchanged_source_changes_nothing(source, academy_catalogue):
    import_source(source.url)
    before = snapshot()
    report = import_source(source.url)
    assert snapshot() == before
    assert report.new == dict.fromkeys(ACADEMY["found"], 0)
    assert report.changed == dict.fromkeys(ACADEMY["found"], 0)
    assert report.unchanged == ACADEMY["found"]


def test_a_run_after_the_source_changed_updates_what_changed(source, academy_catalogue):
    import_source(source.url)
    source.execute("UPDATE users SET last_name = 'Szűcs-Nagy' WHERE id = 4")
    source.execute("UPDATE specialization_progress SET total_xp = 4100 WHERE id = 3")
    source.licence(6, 6, "GANCUJU_PLAYER", level=1)
    report = import_source(source.url)
    assert report.changed == {
        "users": 1,
        "specialization_progress": 1,
        "user_licenses": 0,
        "license_progressions": 0,
    }
    assert report.new == {
        "users": 0,
        "specialization_progress": 0,
        "user_licenses": 1,
        "license_progressions": 0,
    }
    assert imported_user(4).last_name == "Szűcs-Nagy"
    assert SpecializationProgress.objects.get(student=imported_user(5)).total_xp == 4100
    assert UserLicense.objects.get(user=imported_user(6)).current_level == 1
    assert consistency.count_pairs().by_kind["missing_license"] == 0


def test_a_rerun_does_not_undo_a_repair_made_since(source, academy_catalogue):
    import_source(source.url)
    UserLicense.objects.filter(user=imported_user(5)).update(current_level=3, max_achieved_level=3)
    import_source(source.url)
    assert UserLicense.objects.get(user=imported_user(5)).current_level == 3


def test_a_specialization_the_catalogue_lacks_stops_the_import_naming_it(source, db):
    out = StringIO()
    with pytest.raises(CommandError) as refused:
        call_command("import_source", source.url, stdout=out)
    assert str(refused.value) == (
        "specializations not in the catalogue: GANCUJU_PLAYER, LFA_COACH. Load the catalogue"
        " first (manage.py load_catalogue); nothing was written."
    )
    assert "Found: 9 users, 5 progress rows, 5 licences, 5 history rows" in out.getvalue()
    assert not User.objects.exists()


@pytest.mark.parametrize(
    "damage, expected",
    [
        (
            "UPDATE user_licenses SET current_level = 0, max_achieved_level = 0 WHERE id = 2",
            [
                "user_licenses id=2 current_level: level 0 is outside 1..8 of LFA_COACH",
                "user_licenses id=2 max_achieved_level: level 0 is outside 1..8 of LFA_COACH",
            ],
        ),
        (
            "UPDATE specialization_progress SET total_xp = -5 WHERE id = 1",
            ["specialization_progress id=1 total_xp: -5 is negative"],
        ),
        (
            "UPDATE specialization_progress SET current_level = 9 WHERE id = 3",
            [
                "specialization_progress id=3 current_level: level 9 is outside 1..8 of"
                " GANCUJU_PLAYER"
            ],
        ),
        (
            "UPDATE license_progressions SET to_level = 12 WHERE id = 4",
            ["license_progressions id=4 to_level: level 12 is outside 1..8 of GANCUJU_PLAYER"],
        ),
    ],
    ids=["licence-level-0", "negative-total", "level-above-max", "history-level-above-max"],
)
def test_bad_source_rows_stop_the_import_naming_table_row_and_field(
    source, academy_catalogue, damage, expected
):
    source.execute(damage)
    report = import_source(source.url)
    assert [str(problem) for problem in report.problems] == expected
    assert report.stopped and not report.written
    assert not User.objects.exists()


def test_an_email_of_an_existing_user_stops_the_import(source, academy_catalogue, make_user):
    existing = make_user(username="bela@academy.test", email="bela@academy.test")
    out = StringIO()
    with pytest.raises(CommandError, match="1 invalid source rows; nothing was written"):
        call_command("import_source", source.url, stdout=out)
    assert (
        f"  users id=5 email: 'bela@academy.test' collides with the product's user"
        f" id={existing.pk}, which was not imported from replaced-system"
    ) in out.getvalue().splitlines()
    assert User.objects.count() == 1


def test_skip_invalid_imports_the_rest_and_lists_what_was_left_out(
    source, academy_catalogue, make_user
):
    make_user(username="bela@academy.test", email="bela@academy.test")
    source.execute("UPDATE user_licenses SET current_level = 0 WHERE id = 5")
    out = StringIO()
    call_command("import_source", source.url, "--skip-invalid", stdout=out)
    text = out.getvalue()
    assert "Left out (invalid):" in text
    assert "  user_licenses id=5 current_level: level 0 is outside 1..3 of INTERNSHIP" in text
    assert (
        "Left out in all (with the rows that depend on them): 1 users, 1 progress rows,"
        " 2 licences, 2 history rows"
    ) in text
    assert ImportedRow.objects.filter(table="users").count() == 8
    assert not ImportedRow.objects.filter(table="users", source_id=5).exists()
    assert UserLicense.objects.filter(specialization="INTERNSHIP").count() == 0


def test_the_source_is_opened_read_only(source):
    import psycopg2

    with (
        open_source(source.url) as reader,
        pytest.raises(psycopg2.errors.ReadOnlySqlTransaction),
        reader._connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM users")
    assert len(source.fetch("SELECT id FROM users")) == 9


def test_an_unreachable_source_is_one_line_without_its_password(db):
    with pytest.raises(CommandError, match=r"^source=postgresql://u:\*\*\*@127.0.0.1:1/x: "):
        call_command("import_source", "postgresql://u:secret@127.0.0.1:1/x", stdout=StringIO())


def ledger_sums_match() -> bool:
    """Every progress row's totals equal the sum of its events (the ledger's promise)."""
    sums = {
        row["progress"]: row
        for row in ProgressEvent.objects.values("progress").annotate(
            **{total: Sum(event) for event, total in LEDGER_FIELDS}
        )
    }
    for progress in SpecializationProgress.objects.all():
        for _, total in LEDGER_FIELDS:
            if sums.get(progress.pk, {}).get(total) != getattr(progress, total):
                return False
    return True


def test_each_progress_row_gets_one_opening_event(source, academy_catalogue):
    import_source(source.url)
    events = ProgressEvent.objects.filter(source="import:replaced-system")
    assert events.count() == 5
    assert sorted(events.values_list("idempotency_key", flat=True)) == [
        f"progress:{i}" for i in range(1, 6)
    ]
    coach = events.get(idempotency_key="progress:2")
    assert (coach.xp_gained, coach.level_before, coach.level_after) == (2500, 3, 3)
    assert ledger_sums_match()


def test_imported_users_are_found_by_the_replaced_systems_ids(source, academy_catalogue):
    import_source(source.url)
    assert resolve_student(source="replaced-system", external_id="4") == imported_user(4)
    assert ExternalId.objects.filter(source="replaced-system").count() == 9


def test_a_changed_total_is_an_event_and_keeps_what_the_product_added(source, academy_catalogue):
    import_source(source.url)
    bela = imported_user(5)
    update_progress(bela, "GANCUJU_PLAYER", xp_gained=100, idempotency_key="k1", source="api")
    source.execute("UPDATE specialization_progress SET total_xp = 4200 WHERE id = 3")
    import_source(source.url)
    progress = SpecializationProgress.objects.get(student=bela)
    assert progress.total_xp == 3200 + 100 + 1000
    change = ProgressEvent.objects.filter(source="import:replaced-system", progress=progress)
    assert sorted(change.values_list("xp_gained", flat=True)) == [1000, 3200]
    assert ledger_sums_match()
    import_source(source.url)  # unchanged since: no further event
    assert ProgressEvent.objects.filter(progress=progress).count() == 3
