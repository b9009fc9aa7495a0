"""Reading the replaced system's catalogue files: every shape taken, bad input named."""

import copy

import pytest

from specializations import catalogue_files
from specializations.exceptions import CatalogueError
from tests import catalogue_shapes as shapes


def read(tmp_path, data, name="spec.json"):
    return catalogue_files.read_paths([shapes.write(tmp_path, name, data)])[0]


def refusal(tmp_path, data, name="spec.json") -> str:
    with pytest.raises(CatalogueError) as caught:
        read(tmp_path, data, name)
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("name", sorted(shapes.SHAPES))
def test_every_shape_is_read(tmp_path, name):
    entry = read(tmp_path, shapes.SHAPES[name], name)
    assert entry.code == shapes.SHAPES[name]["id"]
    assert [level.number for level in entry.levels] == list(range(1, len(entry.levels) + 1))


def test_absent_sessions_projects_and_names_mean_zero_and_empty(tmp_path):
    coach = read(tmp_path, shapes.LFA_COACH)  # no required_projects, no name_en
    assert {level.required_projects for level in coach.levels} == {0}
    assert {level.name_en for level in coach.levels} == {""}
    internship = read(tmp_path, shapes.INTERNSHIP)  # no required_sessions
    assert {level.required_sessions for level in internship.levels} == {0}


def test_checked_requirements_become_columns_and_the_rest_is_kept_unchecked(tmp_path):
    internship = read(tmp_path, shapes.INTERNSHIP)
    level3 = internship.levels[2]
    assert (level3.required_xp, level3.required_projects, level3.total_hours) == (2000, 4, 120)
    assert level3.unchecked_requirements == {
        "mentoring_months": 3,
        "project_types": ["mvp", "growth"],
    }
    coach = read(tmp_path, shapes.LFA_COACH)
    assert coach.levels[1].unchecked_requirements == {
        "mandatory_courses": ["Elsősegély"],
        "exam_pass_percentage": 72,
    }
    assert (coach.levels[1].theory_hours, coach.levels[1].practice_hours) == (40, 60)


def test_hours_may_fall_between_levels(tmp_path):
    coach = read(tmp_path, shapes.LFA_COACH)
    assert coach.levels[2].theory_hours < coach.levels[1].theory_hours


def test_level_one_keeps_its_requirements(tmp_path):
    internship = read(tmp_path, shapes.INTERNSHIP)
    assert (internship.levels[0].required_xp, internship.levels[0].total_hours) == (500, 40)


def test_a_level_without_requirements_reads_as_zero(tmp_path):
    season = read(tmp_path, shapes.SEASON)
    captain = season.levels[1]
    assert (captain.theory_hours, captain.practice_hours, captain.total_hours) == (0, 0, 0)
    assert captain.unchecked_requirements == {}


def test_other_keys_are_kept_and_only_unknown_ones_reported(tmp_path):
    season = read(tmp_path, shapes.SEASON, "season.json")
    assert season.extra == {
        "start_date": "2026-07-01",
        "end_date": "2026-08-15",
        "cost_credits": 120,
        "enrollment_rules": {"max_students": 40},
        "features": ["video analysis"],
        "sponsor": "Acme",
    }
    assert season.notes == (
        f"{tmp_path / 'season.json'}: unknown key 'sponsor' kept as loaded (not used by the "
        "product)",
    )
    gancuju = read(tmp_path, shapes.GANCUJU_PLAYER)
    assert gancuju.notes == ()
    assert gancuju.levels[0].extra == {
        "belt_color": "#FFFFFF",
        "belt_name": "1. öv",
        "xp_max": 999,
    }


def test_an_unknown_requirement_is_kept_unchecked_and_reported(tmp_path):
    data = shapes.changed(shapes.LFA_COACH, level_2={"requirements": {"first_aid_card": True}})
    entry = read(tmp_path, data, "coach.json")
    assert entry.levels[1].unchecked_requirements == {"first_aid_card": True}
    assert entry.notes == (
        f"{tmp_path / 'coach.json'}: level 2: requirements: unknown key 'first_aid_card' kept"
        " as loaded (not used by the product)",
    )


def test_a_directory_means_every_json_file_in_it(tmp_path):
    shapes.write_all(tmp_path)
    (tmp_path / "README.txt").write_text("not a catalogue")
    entries = catalogue_files.read_paths([tmp_path])
    assert sorted(entry.code for entry in entries) == sorted(
        data["id"] for data in shapes.SHAPES.values()
    )


def test_falling_xp_names_the_file_the_level_and_the_field(tmp_path):
    data = shapes.changed(shapes.GANCUJU_PLAYER, level_3={"xp_required": 900})
    assert refusal(tmp_path, data) == (
        f"{tmp_path / 'spec.json'}: level 3: xp_required=900 is below level 2's 1000"
        " (required XP must not fall as the level rises)"
    )


def test_equal_xp_on_two_levels_is_taken(tmp_path):
    data = shapes.changed(shapes.GANCUJU_PLAYER, level_3={"xp_required": 1000})
    assert read(tmp_path, data).levels[2].required_xp == 1000


def test_a_duplicate_level_number_is_refused(tmp_path):
    data = copy.deepcopy(shapes.LFA_COACH)
    data["levels"][2]["level"] = 2
    assert refusal(tmp_path, data) == (
        f"{tmp_path / 'spec.json'}: level 2: level: the number 2 appears more than once"
    )


def test_a_missing_level_number_is_refused(tmp_path):
    data = copy.deepcopy(shapes.LFA_COACH)
    del data["levels"][1]
    assert refusal(tmp_path, data) == (
        f"{tmp_path / 'spec.json'}: levels: level 2 is missing (expected levels 1 to 4,"
        " found 1, 3, 4)"
    )


@pytest.mark.parametrize(
    "fields, field, value",
    [
        ({"xp_required": "1000"}, "xp_required", "'1000'"),
        ({"required_sessions": 2.5}, "required_sessions", "2.5"),
        ({"required_projects": -1}, "required_projects", "-1"),
        ({"xp_required": True}, "xp_required", "True"),
        ({"requirements": {"theory_hours": "ten"}}, "requirements.theory_hours", "'ten'"),
    ],
)
def test_a_non_integer_amount_names_the_level_and_the_field(tmp_path, fields, field, value):
    data = shapes.changed(shapes.LFA_COACH, level_2=fields)
    assert refusal(tmp_path, data).startswith(
        f"{tmp_path / 'spec.json'}: level 2: {field}={value} must be a whole number from 0"
    )


def test_a_missing_id_is_refused(tmp_path):
    data = copy.deepcopy(shapes.LFA_COACH)
    del data["id"]
    assert refusal(tmp_path, data) == f"{tmp_path / 'spec.json'}: id: missing"


@pytest.mark.parametrize("code", ["lfa_coach", "LFA COACH", "1COACH", "COACH\n", "A" * 51, ""])
def test_an_id_that_is_not_a_code_is_refused(tmp_path, code):
    data = {**shapes.LFA_COACH, "id": code}
    assert refusal(tmp_path, data).startswith(
        f"{tmp_path / 'spec.json'}: id={code!r} is not a specialization code"
    )


def test_the_same_id_in_two_files_is_refused(tmp_path):
    shapes.write(tmp_path, "a.json", shapes.LFA_COACH)
    shapes.write(tmp_path, "b.json", shapes.LFA_COACH)
    with pytest.raises(
        CatalogueError, match=r"b\.json: id='LFA_COACH' is also the id of .*a\.json"
    ):
        catalogue_files.read_paths([tmp_path])


def test_a_file_that_is_not_json_says_where(tmp_path):
    message = refusal(tmp_path, '{"id": "X",\n  "levels": [}')
    assert message.startswith(f"{tmp_path / 'spec.json'}: is not JSON: ")
    assert "line 2 column" in message


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(CatalogueError, match="nope.json: cannot be read"):
        catalogue_files.read_paths([tmp_path / "nope.json"])


def test_a_level_without_a_name_is_refused(tmp_path):
    data = copy.deepcopy(shapes.LFA_COACH)
    del data["levels"][3]["name"]
    assert refusal(tmp_path, data) == f"{tmp_path / 'spec.json'}: level 4: name: missing"


def test_a_file_without_levels_is_refused(tmp_path):
    data = {"id": "EMPTY", "name": "Empty", "levels": []}
    assert refusal(tmp_path, data) == (
        f"{tmp_path / 'spec.json'}: levels: expected a non-empty list of levels,"
        " found an empty list"
    )
