"""import_progress: files of progress events through the ledger, set-based, all or nothing."""

import dataclasses
import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Sum

from imports.progress_file import EventFile
from imports.progress_import import import_progress
from licenses import consistency
from licenses.models import LicenseProgression, UserLicense
from specializations.catalogue import all_specializations
from specializations.models import LEDGER_FIELDS, ProgressEvent, SpecializationProgress
from specializations.services import enroll, link_external_id, update_progress

HEADER = (
    "student_id,specialization,xp,sessions,projects,theory_hours,practice_hours,reason,occurred_at"
)


@pytest.fixture
def students(make_user, academy_catalogue):
    """Three students enrolled in GANCUJU_PLAYER (level 2 at 1,000 XP, 3 at 2,000, ...)."""
    users = [make_user() for _ in range(3)]
    for user in users:
        enroll(user, "GANCUJU_PLAYER")
    return users


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def csv_file(tmp_path, rows: list[str], name="awards.csv"):
    return write(tmp_path, name, "\n".join([HEADER, *rows]) + "\n")


def totals(user, code="GANCUJU_PLAYER") -> tuple:
    progress = SpecializationProgress.objects.get(student=user, specialization=code)
    return (progress.current_level, *(getattr(progress, total) for _, total in LEDGER_FIELDS))


def ledger_sums_match() -> bool:
    for progress in SpecializationProgress.objects.all():
        sums = progress.events.aggregate(**{t: Sum(e) for e, t in LEDGER_FIELDS})
        if any((sums[t] or 0) != getattr(progress, t) for _, t in LEDGER_FIELDS):
            return False
    return True


def test_a_csv_file_adds_totals_moves_levels_and_licences_with_one_event_per_line(
    tmp_path, students
):
    a, b, c = students
    path = csv_file(
        tmp_path,
        [
            f"{a.pk},GANCUJU_PLAYER,600,1,0,0,0,Torna,2026-03-01T10:00:00+01:00",
            f"{a.pk},GANCUJU_PLAYER,1500,2,1,3,4,Vizsga,2026-03-02T10:00:00Z",
            f"{b.pk},GANCUJU_PLAYER,10,0,0,0,0,,",
        ],
    )
    report = import_progress(path)
    assert (report.lines, report.events, report.replays, report.pairs) == (3, 3, 0, 2)
    assert totals(a) == (3, 2100, 3, 1, 3, 4)
    assert totals(b) == (1, 10, 0, 0, 0, 0)
    assert totals(c) == (1, 0, 0, 0, 0, 0)
    events = ProgressEvent.objects.filter(source="import:awards.csv")
    assert list(events.order_by("id").values_list("level_before", "level_after")) == [
        (1, 1),
        (1, 3),
        (1, 1),
    ]
    first = events.order_by("id").first()
    assert first.occurred_at.isoformat() == "2026-03-01T09:00:00+00:00"
    assert first.reason == "Torna"
    licence = UserLicense.objects.get(user=a)
    assert (licence.current_level, licence.max_achieved_level) == (3, 3)
    history = licence.progressions.order_by("-id").first()
    assert (history.from_level, history.to_level, history.advanced_by) == (1, 3, None)
    assert consistency.count_pairs().inconsistent == 0
    assert ledger_sums_match()


def test_json_lines_address_students_by_external_id(tmp_path, students):
    a, _, _ = students
    link_external_id(a, source="replaced-system", external_id="A-17")
    lines = [
        {"external_id": "A-17", "specialization": "GANCUJU_PLAYER", "xp": 1200, "key": "k-1"},
        {"external_id": "A-17", "specialization": "GANCUJU_PLAYER", "sessions": 2, "key": "k-2"},
    ]
    path = write(tmp_path, "feed.jsonl", "\n".join(json.dumps(line) for line in lines) + "\n")
    report = import_progress(path, source="quiz")
    assert report.events == 2
    assert totals(a)[:3] == (2, 1200, 2)
    keys = ProgressEvent.objects.filter(source="quiz").values_list("idempotency_key", flat=True)
    assert sorted(keys) == ["k-1", "k-2"]


def test_the_same_file_twice_changes_nothing(tmp_path, students):
    a, b, _ = students
    path = csv_file(
        tmp_path, [f"{a.pk},GANCUJU_PLAYER,1500,,,,,,", f"{b.pk},GANCUJU_PLAYER,5,,,,,,"]
    )
    import_progress(path)
    before = (
        totals(a),
        totals(b),
        ProgressEvent.objects.count(),
        LicenseProgression.objects.count(),
    )
    report = import_progress(path)
    assert (report.events, report.replays) == (0, 2)
    after = (
        totals(a),
        totals(b),
        ProgressEvent.objects.count(),
        LicenseProgression.objects.count(),
    )
    assert after == before


def test_lines_without_a_key_are_keyed_by_the_files_hash_and_line_number(tmp_path, students):
    a, _, _ = students
    path = csv_file(tmp_path, [f"{a.pk},GANCUJU_PLAYER,5,,,,,,"])
    import_progress(path)
    (key,) = ProgressEvent.objects.values_list("idempotency_key", flat=True)
    digest, line = key.split(":")
    assert (len(digest), line) == (16, "2")


def test_bad_lines_refuse_the_file_each_named_by_line_and_field(tmp_path, students):
    a, _, _ = students
    path = csv_file(
        tmp_path,
        [
            f"{a.pk},GANCUJU_PLAYER,10,,,,,,",
            "999999,GANCUJU_PLAYER,10,,,,,,",
            f"{a.pk},NO_SUCH,10,,,,,,",
            f"{a.pk},GANCUJU_PLAYER,1.5,,,,,,",
            f"{a.pk},GANCUJU_PLAYER,-50,,,,,,",
            f"{a.pk},GANCUJU_PLAYER,1,,,,,,yesterday",
        ],
    )
    out = StringIO()
    with pytest.raises(CommandError) as refused:
        call_command("import_progress", str(path), stdout=out)
    assert str(refused.value) == f"{path}: 5 problems in 6 lines; nothing was written."
    assert out.getvalue().splitlines() == [
        "  line 3: student_id: 999999 is not a user",
        "  line 4: specialization: 'NO_SUCH' is not in the catalogue",
        "  line 5: xp: '1.5' is not a whole number",
        "  line 6: xp: would make total_xp -40",
        "  line 7: occurred_at: 'yesterday' is not an ISO 8601 time with a time zone",
    ]
    assert totals(a) == (1, 0, 0, 0, 0, 0)
    assert not ProgressEvent.objects.exists()


def test_a_negative_total_is_found_even_with_other_bad_lines_fixed(tmp_path, students):
    a, _, _ = students
    update_progress(a, "GANCUJU_PLAYER", xp_gained=30)
    path = csv_file(
        tmp_path, [f"{a.pk},GANCUJU_PLAYER,-20,,,,,,", f"{a.pk},GANCUJU_PLAYER,-20,,,,,,"]
    )
    report = import_progress(path)
    assert [str(line) for line in report.bad] == ["line 3: xp: would make total_xp -10"]
    assert totals(a)[1] == 30


def test_only_the_first_hundred_bad_lines_are_listed_then_a_count(tmp_path, students):
    path = csv_file(tmp_path, [f"{n},GANCUJU_PLAYER,x,,,,,," for n in range(1, 151)])
    out = StringIO()
    with pytest.raises(CommandError, match="150 problems in 150 lines"):
        call_command("import_progress", str(path), stdout=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 101
    assert lines[-1] == "  ... and 50 more"


def test_a_key_recorded_before_with_other_amounts_is_a_bad_line(tmp_path, students):
    a, _, _ = students
    update_progress(
        a, "GANCUJU_PLAYER", xp_gained=10, idempotency_key="t-1", source="import:x.jsonl"
    )
    path = write(
        tmp_path,
        "x.jsonl",
        json.dumps(
            {"student_id": a.pk, "specialization": "GANCUJU_PLAYER", "xp": 11, "key": "t-1"}
        ),
    )
    report = import_progress(path)
    (bad,) = report.bad
    assert (bad.line, bad.field) == (1, "key")
    assert "'t-1' was recorded before" in bad.message
    assert totals(a)[1] == 10


def test_a_key_twice_in_one_file_counts_once_or_is_refused_when_values_differ(tmp_path, students):
    a, _, _ = students
    same = {"student_id": a.pk, "specialization": "GANCUJU_PLAYER", "xp": 7, "key": "dup"}
    path = write(tmp_path, "d.jsonl", f"{json.dumps(same)}\n{json.dumps(same)}\n")
    assert (import_progress(path).events, totals(a)[1]) == (1, 7)
    other = write(tmp_path, "e.jsonl", f"{json.dumps(same)}\n{json.dumps({**same, 'xp': 8})}\n")
    report = import_progress(other, source="import:other")
    assert [str(line) for line in report.bad] == [
        "line 2: key: 'dup' is also on line 1 with other values"
    ]


def test_a_student_not_yet_enrolled_is_enrolled_with_a_licence_and_its_history(
    tmp_path, make_user, academy_catalogue
):
    newcomer = make_user()
    path = csv_file(tmp_path, [f"{newcomer.pk},LFA_COACH,2500,,,,,,"])
    report = import_progress(path)
    assert (report.enrolled, report.licences_issued) == (1, 1)
    assert totals(newcomer, "LFA_COACH")[:2] == (3, 2500)
    licence = UserLicense.objects.get(user=newcomer)
    (issued,) = licence.progressions.all()
    assert (licence.current_level, issued.from_level, issued.to_level) == (3, None, 3)
    assert consistency.count_pairs().inconsistent == 0


def test_a_licence_ahead_of_its_progress_raises_the_progress(tmp_path, students):
    a, _, _ = students
    UserLicense.objects.filter(user=a).update(current_level=4, max_achieved_level=4)
    path = csv_file(tmp_path, [f"{a.pk},GANCUJU_PLAYER,100,,,,,,"])
    import_progress(path)
    assert totals(a)[0] == 4
    assert consistency.count_pairs().inconsistent == 0


def test_a_dry_run_reports_and_writes_nothing(tmp_path, students):
    a, _, _ = students
    path = csv_file(tmp_path, [f"{a.pk},GANCUJU_PLAYER,1500,,,,,,"])
    out = StringIO()
    call_command("import_progress", str(path), "--dry-run", stdout=out)
    assert out.getvalue().splitlines() == [
        "Would import 1 events from 1 lines as import:awards.csv (0 already recorded): 1 pairs,"
        " 0 newly enrolled, 1 levels raised, 1 licences moved, 0 issued.",
        "Dry run: nothing was written.",
    ]
    assert totals(a) == (1, 0, 0, 0, 0, 0)
    assert not ProgressEvent.objects.exists()


def test_the_command_says_what_it_imported(tmp_path, students):
    a, _, _ = students
    path = csv_file(tmp_path, [f"{a.pk},GANCUJU_PLAYER,1500,,,,,,"])
    out = StringIO()
    call_command("import_progress", str(path), stdout=out)
    assert out.getvalue() == (
        "Imported 1 events from 1 lines as import:awards.csv (0 already recorded): 1 pairs,"
        " 0 newly enrolled, 1 levels raised, 1 licences moved, 0 issued.\n"
    )


def test_a_correction_later_in_the_file_never_lowers_a_level_it_reached(tmp_path, students):
    a, _, _ = students
    path = csv_file(
        tmp_path, [f"{a.pk},GANCUJU_PLAYER,2500,,,,,,", f"{a.pk},GANCUJU_PLAYER,-2000,,,,,,"]
    )
    import_progress(path)
    assert totals(a)[:2] == (3, 500)
    levels = ProgressEvent.objects.order_by("id").values_list("level_before", "level_after")
    assert list(levels) == [(1, 3), (3, 3)]
    assert UserLicense.objects.get(user=a).current_level == 3
    assert ledger_sums_match()


def test_a_plain_line_and_an_unusual_one_give_the_rows_the_ledgers_checks_give(
    tmp_path, students, academy_catalogue
):
    """The short path for plain lines agrees with the ledger's own checks (``_row``)."""
    a, _, _ = students
    lines = [
        f"{a.pk},GANCUJU_PLAYER,150,1,,,,Edzés,2026-03-01T10:00:00+01:00",  # short path
        f"00{a.pk},GANCUJU_PLAYER,-5,,,,,,",  # short path: leading zeros, a correction
        f"{a.pk},GANCUJU_PLAYER, +7 ,1,,,,a\tb,",  # the checks: spaces, a sign, a tab
        f"{a.pk},GANCUJU_PLAYER,1234567890,,,,,,",  # the checks: ten digits
    ]
    path = csv_file(tmp_path, lines)
    events = EventFile(path, catalogue=all_specializations())
    rows = list(events.rows([]))
    names = HEADER.split(",")
    expected = [
        events._row(n, {k: v for k, v in zip(names, line.split(","), strict=True) if v}, [])
        for n, line in enumerate(lines, start=2)
    ]
    normal = [
        tuple(int(v) if isinstance(v, str) and v.lstrip("-").isdigit() else v for v in row)
        for row in rows
    ]
    assert [tuple(map(str, row)) for row in normal] == [tuple(map(str, row)) for row in expected]
    assert (events.corrections, events.own_keys, events.external_ids) == (True, False, False)
    assert expected[2][4] == 7 and expected[2][9] == "a b"


def test_the_query_count_does_not_grow_with_the_lines(
    tmp_path, students, django_assert_max_num_queries
):
    a, b, c = students
    few = csv_file(tmp_path, [f"{a.pk},GANCUJU_PLAYER,1500,1,,,,,"], name="few.csv")
    many = csv_file(
        tmp_path,
        [f"{user.pk},GANCUJU_PLAYER,5,1,,,,," for _ in range(300) for user in (a, b, c)],
        name="many.csv",
    )
    counts = []
    for path in (few, many):  # each moves a level and its licence
        with django_assert_max_num_queries(60) as captured:
            report = import_progress(path)
        counts.append((report.events, len(captured)))
    assert counts[1] == (900, counts[0][1])
    assert all(isinstance(value, int) for value in dataclasses.astuple(report)[1:9])


def test_plain_json_lines_give_the_rows_the_ledgers_checks_give(tmp_path, students):
    a, _, _ = students
    records = [
        {"student_id": a.pk, "specialization": "GANCUJU_PLAYER", "xp": 150, "reason": "Edzés"},
        {"external_id": "A-17", "specialization": "GANCUJU_PLAYER", "xp": -5, "key": "k-1"},
        {"student_id": str(a.pk), "specialization": "GANCUJU_PLAYER", "sessions": "2"},
        {"student_id": a.pk, "specialization": "GANCUJU_PLAYER", "reason": "a\tb", "xp": 1},
        {
            "student_id": a.pk,
            "specialization": "GANCUJU_PLAYER",
            "occurred_at": "2026-03-01T10:00:00+01:00",
        },
    ]
    path = write(tmp_path, "feed.jsonl", "\n".join(json.dumps(r) for r in records) + "\n")
    events = EventFile(path, catalogue=all_specializations())
    rows = list(events.rows([]))
    expected = [events._row(n, record, []) for n, record in enumerate(records, start=1)]
    assert rows == expected
    assert rows[3][9] == "a b"  # the tab folded by the ledger's check
    assert (events.corrections, events.own_keys, events.external_ids) == (True, True, True)
