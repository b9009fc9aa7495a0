"""common/text.py: a message put into words when shown, in the language active then."""

from django.utils import translation

from common.text import Text
from monitoring.exceptions import REPLICA_ALLOWED, REPLICA_BEHIND, ReplicaBehind

BEHIND = Text(
    REPLICA_BEHIND, alias="replica", seconds=75.4, detail=Text(REPLICA_ALLOWED, limit="60")
)


def test_it_reads_in_the_language_active_when_shown_not_when_made():
    with translation.override("hu"):
        made_in_hungarian = Text(REPLICA_BEHIND, **BEHIND.params)
    with translation.override(None):
        assert str(made_in_hungarian) == (
            "replica 'replica' is 75 s behind the primary (allowed 60 s)"
        )
    with translation.override("hu"):
        assert str(made_in_hungarian) == (
            "a(z) 'replica' replika 75 s-mal késik az elsődlegeshez képest (megengedett: 60 s)"
        )
        assert made_in_hungarian.english() == (
            "replica 'replica' is 75 s behind the primary (allowed 60 s)"
        )


def test_it_survives_a_json_field_nested_values_and_all():
    data = BEHIND.as_json()
    assert data == {
        "text": REPLICA_BEHIND,
        "params": {
            "alias": "replica",
            "seconds": 75.4,
            "detail": {"text": REPLICA_ALLOWED, "params": {"limit": "60"}},
        },
    }
    assert Text.from_json(data) == BEHIND


def test_a_value_json_cannot_hold_is_kept_as_its_text():
    from decimal import Decimal

    assert Text("%(rate)s%%", rate=Decimal("99.50")).as_json()["params"] == {"rate": "99.50"}


def test_a_wording_changed_since_it_was_recorded_reads_in_its_recorded_english():
    recorded = {"text": "the old wording of %(what)s", "params": {"what": "a reason"}}
    with translation.override("hu"):
        assert str(Text.from_json(recorded)) == "the old wording of a reason"


def test_an_error_s_message_is_english_for_programs_and_hungarian_for_staff():
    error = ReplicaBehind("replica", 75.0, limit=60, paused=True)
    with translation.override(None):
        assert str(error) == (
            "replica 'replica' is 75 s behind the primary (replay paused; allowed 60 s)"
        )
    with translation.override("hu"):
        assert str(error) == (
            "a(z) 'replica' replika 75 s-mal késik az elsődlegeshez képest"
            " (a visszajátszás szünetel; megengedett: 60 s)"
        )
