"""`manage.py load_catalogue` / `export_catalogue`: the files' catalogue, all or nothing."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from licenses.models import LicenseProgression
from specializations import catalogue
from specializations.models import Level, Specialization, SpecializationProgress
from tests import catalogue_shapes as shapes

pytestmark = pytest.mark.django_db


def load(*paths, dry_run=False) -> str:
    out = StringIO()
    args = [str(path) for path in paths] + (["--dry-run"] if dry_run else [])
    call_command("load_catalogue", *args, stdout=out)
    return out.getvalue()


def refused(*paths) -> CommandError:
    with pytest.raises(CommandError) as caught:
        load(*paths)
    assert caught.value.returncode == 1
    return caught.value


def catalogue_rows() -> tuple:
    return (
        list(Specialization.objects.order_by("code").values()),
        list(Level.objects.order_by("specialization_id", "number").values()),
    )


def test_every_shape_loads_with_its_levels_and_kept_keys(tmp_path):
    output = load(shapes.write_all(tmp_path))
    gancuju = Specialization.objects.get(code="GANCUJU_PLAYER")
    assert (gancuju.name, gancuju.max_level, gancuju.is_active) == ("GānCuju Player", 4, True)
    assert gancuju.extra == {"min_age": 5, "color_theme": "#8B4513", "icon": "🥋"}
    reed = Level.objects.get(specialization=gancuju, number=3)
    assert (reed.name, reed.name_en, reed.description) == (
        "Rugalmas Nád",
        "Flexible Reed",
        "Szint 3",
    )
    assert (reed.required_xp, reed.required_sessions, reed.required_projects) == (2500, 15, 1)
    assert (reed.theory_hours, reed.practice_hours, reed.total_hours) == (20, 60, 0)
    assert reed.unchecked_requirements == {"skills": ["Alapállás", "Egyensúly"]}
    assert reed.extra == {"belt_color": "#FFFFFF", "belt_name": "3. öv", "xp_max": 4999}
    assert reed.license_title == "Rugalmas Nád"
    season = Specialization.objects.get(code="SUMMER_CAMP_2026")
    assert season.extra["enrollment_rules"] == {"max_students": 40}
    assert "+ LFA_COACH: new specialization 'LFA Coach', 4 levels" in output
    assert "note: " in output and "unknown key 'sponsor'" in output
    assert output.endswith("Loaded.\n")


def test_a_file_for_an_existing_code_updates_it_in_place(tmp_path):
    output = load(shapes.write(tmp_path, "internship.json", shapes.INTERNSHIP))
    explorer = Level.objects.get(specialization_id="INTERNSHIP", number=1)
    assert (explorer.name, explorer.required_xp, explorer.required_projects) == ("Explorer", 500, 1)
    # A title the file does not give is left as it was.
    assert explorer.license_title == "Startup Explorer Certificate"
    assert "~ INTERNSHIP level 1: name 'Startup Explorer' -> 'Explorer'" in output
    assert "xp_required 10000 -> 500" in output
    assert "INTERNSHIP: 3 levels changed; 0 students moved up" in output


def test_loading_the_same_files_twice_changes_nothing(tmp_path):
    shapes.write_all(tmp_path)
    load(tmp_path)
    before = catalogue_rows()
    with CaptureQueriesContext(connection) as queries:
        output = load(tmp_path)
    writes = [q["sql"] for q in queries if q["sql"].split()[0] in ("INSERT", "UPDATE", "DELETE")]
    assert writes == []
    assert catalogue_rows() == before
    assert "No changes: the catalogue already matches these files." in output
    assert "LFA_COACH: unchanged; 0 students moved up" in output


def test_a_dry_run_shows_old_and_new_values_and_writes_nothing(tmp_path):
    load(shapes.write(tmp_path, "coach.json", shapes.LFA_COACH))
    students = on_level(2, "LFA_COACH", count=3, xp=2000, sessions=15, theory=35, practice=55)
    eased = shapes.changed(shapes.LFA_COACH, level_3={"xp_required": 1500, "required_sessions": 15})
    before = catalogue_rows()
    output = load(shapes.write(tmp_path, "coach.json", eased), dry_run=True)
    assert "~ LFA_COACH level 3: xp_required 3000 -> 1500, required_sessions 20 -> 15" in output
    assert "LFA_COACH: 1 levels changed; 3 students would move up (to level 3: 3)" in output
    assert output.endswith("Dry run: nothing was written.\n")
    assert catalogue_rows() == before
    assert levels_of(students, "LFA_COACH") == [2, 2, 2]
    assert catalogue.get_specialization("LFA_COACH").levels[2].required_xp == 3000


def test_a_bad_file_refuses_the_whole_load_and_writes_nothing(tmp_path):
    shapes.write(tmp_path, "a_good.json", shapes.LFA_COACH)
    shapes.write(
        tmp_path, "b_bad.json", shapes.changed(shapes.SEASON, level_2={"xp_required": "lots"})
    )
    before = catalogue_rows()
    error = refused(tmp_path)
    assert str(error) == (
        f"{tmp_path / 'b_bad.json'}: level 2: xp_required='lots' must be a whole number from 0"
        " to 2147483647"
    )
    assert catalogue_rows() == before


def test_a_failure_after_the_first_write_leaves_nothing_either(tmp_path):
    # Removing a level a student holds is refused after the other files were planned:
    # the new specialization of the first file is not written.
    on_level(3, "INTERNSHIP", count=1)
    shapes.write(tmp_path, "a_new.json", shapes.LFA_COACH)
    two_levels = {**shapes.INTERNSHIP, "levels": shapes.INTERNSHIP["levels"][:2]}
    shapes.write(tmp_path, "b_internship.json", two_levels)
    error = refused(tmp_path)
    assert str(error) == (
        f"{tmp_path / 'b_internship.json'}: levels: cannot remove level 3 and above: 1 students'"
        " progress is there (the file has 2 levels, the catalogue 3)"
    )
    assert not Specialization.objects.filter(code="LFA_COACH").exists()


def test_levels_nobody_holds_are_removed_with_the_file(tmp_path):
    two_levels = {**shapes.INTERNSHIP, "levels": shapes.INTERNSHIP["levels"][:2]}
    output = load(shapes.write(tmp_path, "internship.json", two_levels))
    assert "- INTERNSHIP level 3" in output
    assert Level.objects.filter(specialization_id="INTERNSHIP").count() == 2
    assert Specialization.objects.get(code="INTERNSHIP").max_level == 2


def test_export_writes_files_that_load_back_unchanged(tmp_path):
    (tmp_path / "in").mkdir()
    load(shapes.write_all(tmp_path / "in"))
    call_command("export_catalogue", str(tmp_path / "out"), stdout=StringIO())
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "coach.json",
        "gancuju_player.json",
        "internship.json",
        "lfa_coach.json",
        "lfa_football_player.json",
        "player.json",
        "summer_camp_2026.json",
    ]
    assert "No changes" in load(tmp_path / "out")


@pytest.mark.parametrize("name", ["gancuju_player.json", "lfa_football_player.json"])
def test_export_gives_back_the_file_that_was_loaded(tmp_path, name):
    load(shapes.write(tmp_path, name, shapes.SHAPES[name]))
    code = shapes.SHAPES[name]["id"]
    call_command(
        "export_catalogue", str(tmp_path / "out"), "--specialization", code, stdout=StringIO()
    )
    exported = json.loads((tmp_path / "out" / name).read_text(encoding="utf-8"))
    assert exported == shapes.SHAPES[name]


def test_export_refuses_an_unknown_code(tmp_path):
    with pytest.raises(CommandError, match="--specialization='NOPE' is not a known") as caught:
        call_command("export_catalogue", str(tmp_path), "--specialization", "NOPE")
    assert caught.value.returncode == 1


# --- levels follow a change ------------------------------------------------------------


def on_level(level, specialization, *, count, xp=0, sessions=0, projects=0, theory=0, practice=0):
    """``count`` students in sync at ``level`` with these totals."""
    from tests.factories import make_pairs

    users = make_pairs(count, specialization=specialization, level=level)
    SpecializationProgress.objects.filter(
        student__in=users, specialization_id=specialization
    ).update(
        total_xp=xp,
        completed_sessions=sessions,
        completed_projects=projects,
        theory_hours_completed=theory,
        practice_hours_completed=practice,
    )
    return users


def levels_of(users, specialization) -> list[int]:
    return list(
        SpecializationProgress.objects.filter(student__in=users, specialization_id=specialization)
        .order_by("student_id")
        .values_list("current_level", flat=True)
    )


def licence_levels_of(users, specialization) -> list[int]:
    from licenses.models import UserLicense

    return list(
        UserLicense.objects.filter(user__in=users, specialization_id=specialization)
        .order_by("user_id")
        .values_list("current_level", flat=True)
    )


@pytest.fixture
def coach(tmp_path):
    load(shapes.write(tmp_path, "coach.json", shapes.LFA_COACH))
    return tmp_path / "coach.json"


def ease(path, **levels):
    data = shapes.changed(json.loads(path.read_text(encoding="utf-8")), **levels)
    shapes.write(path.parent, path.name, data)
    return path


def test_a_lowered_threshold_moves_qualifying_students_licence_and_history_included(coach):
    ready = on_level(2, "LFA_COACH", count=2, xp=2000, sessions=25, theory=40, practice=60)
    short = on_level(2, "LFA_COACH", count=1, xp=1200, sessions=25, theory=40, practice=60)
    output = load(ease(coach, level_3={"xp_required": 2000}))
    assert "LFA_COACH: 1 levels changed; 2 students moved up (to level 3: 2)" in output
    assert levels_of(ready, "LFA_COACH") == [3, 3]
    assert licence_levels_of(ready, "LFA_COACH") == [3, 3]
    assert levels_of(short, "LFA_COACH") == [2]
    history = LicenseProgression.objects.filter(license__user__in=ready)
    assert sorted(history.values_list("from_level", "to_level", "reason", "advanced_by")) == [
        (2, 3, "catalogue change: LFA_COACH level 3", None),
        (2, 3, "catalogue change: LFA_COACH level 3", None),
    ]
    assert catalogue.get_specialization("LFA_COACH").levels[2].required_xp == 2000


def test_students_move_as_far_as_their_totals_reach_in_order(coach):
    users = on_level(1, "LFA_COACH", count=1, xp=7000, sessions=40, theory=50, practice=70)
    load(ease(coach, level_2={"xp_required": 900}))  # unlocks 2, then 3 and 4 already met
    assert levels_of(users, "LFA_COACH") == [4]
    assert LicenseProgression.objects.get(license__user__in=users).reason == (
        "catalogue change: LFA_COACH level 2"
    )


def test_a_raised_threshold_lowers_nobody(coach):
    users = on_level(3, "LFA_COACH", count=2, xp=3000, sessions=20, theory=35, practice=55)
    output = load(ease(coach, level_3={"xp_required": 5000}, level_4={"xp_required": 9000}))
    assert "LFA_COACH: 2 levels changed; 0 students moved up" in output
    assert levels_of(users, "LFA_COACH") == [3, 3]
    assert not LicenseProgression.objects.exists()


def test_the_licence_keeps_its_highest_level(coach):
    from licenses.models import UserLicense

    users = on_level(2, "LFA_COACH", count=1, xp=2500, sessions=20, theory=40, practice=60)
    UserLicense.objects.filter(user__in=users).update(max_achieved_level=4)
    load(ease(coach, level_3={"xp_required": 2500}))
    licence = UserLicense.objects.get(user__in=users)
    assert (licence.current_level, licence.max_achieved_level) == (3, 4)


def test_a_pair_already_out_of_sync_is_left_for_repair(coach):
    from tests.factories import set_license_level

    users = on_level(2, "LFA_COACH", count=2, xp=2500, sessions=20, theory=40, practice=60)
    set_license_level(users[0], "LFA_COACH", 1)
    output = load(ease(coach, level_3={"xp_required": 2500}))
    assert (
        "LFA_COACH: 1 levels changed; 1 students moved up (to level 3: 1); 1 more qualify but"
        " their licence was out of sync: left for repair (check_sync --repair)"
    ) in output
    assert levels_of(users, "LFA_COACH") == [2, 3]
    assert licence_levels_of(users, "LFA_COACH") == [1, 3]


def test_required_projects_are_checked(coach):
    ready = on_level(2, "LFA_COACH", count=1, xp=3000, sessions=20, theory=40, practice=60)
    load(ease(coach, level_3={"required_projects": 2}))  # nobody has projects: nobody moves
    assert levels_of(ready, "LFA_COACH") == [2]
    from specializations.services import update_progress

    result = update_progress(ready[0], "LFA_COACH", projects_completed=2)
    assert (result.old_level, result.new_level) == (2, 3)


def test_the_move_is_set_based(coach, django_assert_num_queries):
    few = on_level(2, "LFA_COACH", count=2, xp=3000, sessions=20, theory=40, practice=60)
    with CaptureQueriesContext(connection) as small:
        load(ease(coach, level_3={"xp_required": 2900}))
    many = on_level(2, "LFA_COACH", count=40, xp=3000, sessions=20, theory=40, practice=60)
    with CaptureQueriesContext(connection) as large:
        load(ease(coach, level_3={"xp_required": 2800}))
    assert levels_of(few, "LFA_COACH") == [3, 3]
    assert levels_of(many, "LFA_COACH") == [3] * 40
    assert len(large) == len(small)


def test_a_new_level_moves_students_already_past_it(tmp_path):
    three = {**shapes.LFA_COACH, "levels": shapes.LFA_COACH["levels"][:3]}
    path = shapes.write(tmp_path, "coach.json", three)
    load(path)
    users = on_level(3, "LFA_COACH", count=1, xp=9000, sessions=40, theory=50, practice=70)
    output = load(shapes.write(tmp_path, "coach.json", shapes.LFA_COACH))
    assert "+ LFA_COACH level 4: 'LFA Coach 4'" in output
    assert levels_of(users, "LFA_COACH") == [4]


def test_the_sql_level_rule_agrees_with_level_for(coach):
    """The set-based move and update_progress decide levels alike, gaps and caps included."""
    import itertools

    from licenses.catalogue_follow import follow_catalogue

    Level.objects.filter(specialization_id="LFA_COACH", number=3).update(required_projects=1)
    info = catalogue.read_specialization("LFA_COACH")
    totals = itertools.product(
        [0, 1000, 3000, 6000], [0, 20, 30], [0, 1], [(30, 50), (45, 65)], [1, 2, 4]
    )
    rows = []
    for xp, sessions, projects, (theory, practice), level in totals:
        (user,) = on_level(
            level,
            "LFA_COACH",
            count=1,
            xp=xp,
            sessions=sessions,
            projects=projects,
            theory=theory,
            practice=practice,
        )
        reached = info.level_for(
            current=level,
            xp=xp,
            sessions=sessions,
            projects=projects,
            theory=theory,
            practice=practice,
        )
        rows.append((user, reached))
    follow_catalogue(info, levels=(2, 3, 4), using="default")
    assert [levels_of([user], "LFA_COACH")[0] for user, _ in rows] == [want for _, want in rows]
    assert {want for _, want in rows} == {1, 2, 3, 4}


def test_a_missing_level_stops_the_move_below_it_not_above_it(coach):
    below = on_level(1, "LFA_COACH", count=1, xp=9000, sessions=40, theory=50, practice=70)
    above = on_level(3, "LFA_COACH", count=1, xp=9000, sessions=40, theory=50, practice=70)
    Level.objects.filter(specialization_id="LFA_COACH", number=3).delete()  # an admin's delete
    from licenses.catalogue_follow import follow_catalogue

    info = catalogue.read_specialization("LFA_COACH")
    follow_catalogue(info, levels=(2, 4), using="default")
    assert levels_of(below, "LFA_COACH") == [2]
    assert levels_of(above, "LFA_COACH") == [4]  # as level_for: the gap is behind it
    totals = {"xp": 9000, "sessions": 40, "projects": 0, "theory": 50, "practice": 70}
    assert (info.level_for(current=1, **totals), info.level_for(current=3, **totals)) == (2, 4)


@pytest.fixture
def catalogue_receiver_disconnected():
    from licenses import signals
    from specializations.catalogue import SpecializationInfo
    from specializations.levels import catalogue_changed

    catalogue_changed.disconnect(
        sender=SpecializationInfo, dispatch_uid=signals.CATALOGUE_DISPATCH_UID
    )
    try:
        yield
    finally:
        signals.connect_receivers()


def test_without_the_licences_receiver_an_easing_load_is_refused_and_e001_says_so(
    coach, catalogue_receiver_disconnected
):
    from django.core import checks

    users = on_level(2, "LFA_COACH", count=1, xp=2500, sessions=20, theory=40, practice=60)
    error = refused(ease(coach, level_3={"xp_required": 2500}))
    assert str(error).startswith("specialization='LFA_COACH': no receiver of catalogue_changed")
    assert Level.objects.get(specialization_id="LFA_COACH", number=3).required_xp == 3000
    assert levels_of(users, "LFA_COACH") == [2]
    errors = [e for e in checks.run_checks(databases=["default"]) if e.id == "licenses.E001"]
    assert "not connected to catalogue_changed" in errors[0].msg
