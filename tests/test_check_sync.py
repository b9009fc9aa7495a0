"""check_sync for cron: output, JSON, repair, exit codes (in-process and as a real process)."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext

from licenses import consistency
from licenses.guard import unguarded
from licenses.models import LicenseProgression, UserLicense
from monitoring.management.commands.check_sync import Command
from monitoring.models import HealthCheckRun
from monitoring.repair import batch
from specializations.models import SpecializationProgress
from tests.conftest import manage
from tests.factories import (
    delete_row,
    make_desynced_pairs,
    make_pairs,
    set_progress_level,
    write_sqlite_pairs,
)


def desync(pairs, broken):
    """``pairs`` PLAYER pairs at level 2, the first ``broken`` of them one level behind."""
    return [*make_desynced_pairs(broken), *make_pairs(pairs - broken, level=2)]


class TerminalStream(StringIO):
    def isatty(self):
        return True


@pytest.mark.django_db
class TestInProcess:
    @pytest.mark.parametrize(
        "pairs, broken, code, state",
        [(10, 0, 0, "OK"), (100, 2, 1, "WARNING"), (10, 5, 2, "CRITICAL")],
    )
    def test_exit_code_follows_the_status(self, pairs, broken, code, state, check_sync):
        desync(pairs, broken)
        exit_code, out, _ = check_sync()
        assert exit_code == code
        assert out.startswith(f"SYNC {state} - {broken} of {pairs} pairs out of sync")

    def test_human_output_is_a_status_line_then_a_table(self, check_sync):
        users = desync(3, 1)
        _, out, _ = check_sync("--no-record")
        lines = out.splitlines()
        assert lines[0].startswith("SYNC CRITICAL - 1 of 3 pairs out of sync (66.66%) | ")
        assert lines[1].split() == ["user_id", "specialization", "progress", "licence", "kind"]
        assert lines[2].split() == [str(users[0].pk), "PLAYER", "3", "2", "level_mismatch"]
        assert len(lines) == 3

    def test_limit_caps_the_table(self, check_sync):
        desync(10, 6)
        _, out, _ = check_sync("--limit", "2")
        assert len(out.splitlines()) == 1 + 1 + 2 + 1
        assert out.splitlines()[-1] == "... and 4 more"

    def test_json_matches_the_report_and_the_recorded_run(self, check_sync):
        users = desync(10, 1)
        delete_row(UserLicense, users[9], "PLAYER")
        _, out, _ = check_sync("--json")
        data = json.loads(out)
        run = HealthCheckRun.objects.get()
        assert data["run"] == run.pk
        assert (data["total_checked"], data["consistent"], data["inconsistent"]) == (10, 8, 2)
        assert data["by_kind"] == {"missing_license": 1, "missing_progress": 0, "level_mismatch": 1}
        assert (data["consistency_rate"], data["status"]) == (80.0, "critical")
        assert data["violations"][0] == {
            "user_id": users[0].pk,
            "specialization_id": "PLAYER",
            "progress_level": 3,
            "license_level": 2,
            "kind": "level_mismatch",
        }
        assert isinstance(data["duration_ms"], int)

    def test_no_record_leaves_no_run(self, check_sync):
        check_sync("--no-record")
        assert not HealthCheckRun.objects.exists()

    def test_thresholds_on_the_command_line(self, check_sync):
        desync(10, 2)  # 80.00 %
        assert check_sync("--warn-below", "80", "--critical-below", "50")[0] == 0
        assert check_sync("--warn-below", "90", "--critical-below", "50")[0] == 1

    def test_specialization_option(self, check_sync):
        desync(10, 5)
        make_pairs(3, specialization="COACH")
        exit_code, out, _ = check_sync("--specialization", "COACH")
        assert exit_code == 0 and out.startswith("SYNC OK - 0 of 3 pairs out of sync")

    def test_repair_of_one_specialization_leaves_the_others_alone(self, check_sync):
        players = desync(4, 2)  # PLAYER: progress 3 over licence 2 on two pairs
        coaches = make_pairs(4, specialization="COACH", level=2)
        for user in coaches[:3]:
            set_progress_level(user, "COACH", 4)
        exit_code, out, _ = check_sync("--repair", "--specialization", "COACH", "-v", "0")
        assert exit_code == 0 and out.startswith(
            "SYNC OK - 0 of 4 pairs out of sync (100.00%) in COACH |"
        )
        assert consistency.count_pairs(specialization="COACH").inconsistent == 0
        left = consistency.violations()
        assert [(v.user_id, v.specialization_id) for v in left] == [
            (u.pk, "PLAYER") for u in players[:2]
        ]
        assert not LicenseProgression.objects.filter(license__specialization_id="PLAYER").exists()

    def test_repair_fixes_everything_and_records_the_count(self, capsys, check_sync):
        users = desync(10, 3)
        delete_row(SpecializationProgress, users[8], "PLAYER")
        exit_code, out, _ = check_sync("--repair")
        assert exit_code == 0
        assert out.splitlines()[0].startswith("SYNC OK - 0 of 10 pairs out of sync")
        assert "repaired 4 pair(s) (level_mismatch=3, missing_progress=1)" in out
        assert HealthCheckRun.objects.get().repaired == 4
        assert LicenseProgression.objects.count() == 3

    def test_dry_run_shows_the_plan_and_writes_nothing(self, check_sync):
        desync(10, 3)
        exit_code, out, _ = check_sync("--repair", "--dry-run")
        assert exit_code == 2
        assert "would repair 3 pair(s)" in out
        assert out.count("-> raise_license to level 3") == 3
        assert SpecializationProgress.objects.filter(current_level=3).count() == 3
        assert UserLicense.objects.filter(current_level=3).count() == 0
        # Recorded as what it was (issue 13): a dry repair run that changed nothing.
        run = HealthCheckRun.objects.get()
        assert (run.kind, run.dry_run, run.state, run.repaired) == ("repair", True, "done", 0)
        assert not LicenseProgression.objects.exists()

    @pytest.mark.parametrize(
        "args, message",
        [
            (["--specialization", "GOLF"], "specialization='GOLF' is not a known specialization"),
            (["--database", "nowhere"], "database='nowhere' is not a configured database alias"),
            (["--dry-run"], "--dry-run needs --repair"),
            (["--warn-below", "90", "--critical-below", "95"], "warn_below=90.0"),
        ],
    )
    def test_bad_input_is_unknown_with_the_reason_once_on_stdout(self, args, message, check_sync):
        exit_code, out, err = check_sync(*args)
        assert exit_code == 3
        assert out.startswith("SYNC UNKNOWN - ") and message in out
        assert out.count(message) == 1 and err == ""

    def test_repair_shows_a_progress_bar_on_a_terminal_sized_by_the_last_check(self, check_sync):
        desync(10, 4)
        check_sync("-v", "0")  # cron's latest check: 4 out of sync
        terminal = TerminalStream()
        with CaptureQueriesContext(connection) as queries:
            call_command(Command(), "--repair", stdout=StringIO(), stderr=terminal)
        assert "repairing [" in terminal.getvalue()
        assert terminal.getvalue().rstrip().endswith("] 4/4")
        counts = [q for q in queries.captured_queries if "COUNT(*) FILTER" in q["sql"]]
        assert len(counts) == 1  # the check after the repair; the bar did not count again

    def test_no_bar_without_a_recorded_check_to_size_it(self):
        desync(10, 4)
        terminal = TerminalStream()
        call_command(Command(), "--repair", stdout=StringIO(), stderr=terminal)
        assert terminal.getvalue() == ""

    def test_repair_is_silent_on_stderr_under_cron(self, check_sync):
        desync(10, 4)
        assert check_sync("--repair")[2] == ""

    def test_database_alias_is_used_for_the_check(self, check_sync):
        desync(10, 1)
        exit_code, out, _ = check_sync("--database", "default", "--json")
        assert json.loads(out)["database"] == "default"
        assert exit_code == 2

    def test_repair_refuses_a_replica(self, check_sync):
        exit_code, out, _ = check_sync("--repair", "--database", "replica")
        assert exit_code == 3 and "repair writes to the primary" in out

    def test_verbosity_zero_prints_the_status_line_alone(self, check_sync):
        desync(10, 5)
        _, out, _ = check_sync("-v", "0")
        assert len(out.splitlines()) == 1


# --- As cron runs it: a real process against a real database file ---


@pytest.fixture(scope="module")
def sqlite_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cron") / "db.sqlite3"
    result = manage("migrate", "--noinput", DATABASE_URL=f"sqlite:///{path}")
    assert result.returncode == 0, result.stderr
    return path


@pytest.mark.parametrize(
    "levels, code",
    [
        ([(1, 1)] * 100, 0),
        ([(1, 1)] * 98 + [(2, 1)] * 2, 1),
        ([(1, 1)] * 90 + [(2, 1)] * 10, 2),
    ],
)
def test_process_exit_codes(sqlite_file, levels, code):
    write_sqlite_pairs(sqlite_file, levels)
    result = manage("check_sync", "--no-record", DATABASE_URL=f"sqlite:///{sqlite_file}")
    assert result.returncode == code, result.stdout + result.stderr
    assert result.stdout.startswith("SYNC ")
    assert result.stderr == ""


def test_process_json_parses(sqlite_file):
    write_sqlite_pairs(sqlite_file, [(1, 1), (3, 1)])
    result = manage("check_sync", "--json", DATABASE_URL=f"sqlite:///{sqlite_file}")
    data = json.loads(result.stdout)
    assert (data["total_checked"], data["inconsistent"], data["status"]) == (2, 1, "critical")
    assert result.returncode == 2


@pytest.mark.parametrize(
    "args, message",
    [
        (["--limit", "many"], "argument --limit: invalid int value: 'many'"),
        (["--timeout", "nan"], "argument --timeout: 'nan' is not a number of seconds"),
        (["--timeout", "inf"], "argument --timeout: 'inf' is not a number of seconds"),
        (["--timeout", "-1"], "argument --timeout: '-1' is not a number of seconds"),
        (["--warn-below", "abc"], "argument --warn-below: invalid rate value: 'abc'"),
        (["--critical-below", "101"], "argument --critical-below: '101' is not a rate"),
        (["--max-replica-lag", "nan"], "argument --max-replica-lag: 'nan' is not a number"),
    ],
)
def test_process_bad_arguments_exit_3_not_argparse_2(sqlite_file, args, message):
    result = manage("check_sync", *args, DATABASE_URL=f"sqlite:///{sqlite_file}")
    assert result.returncode == 3
    assert result.stdout.startswith(f"SYNC UNKNOWN - bad arguments: {message}")
    assert len(result.stdout.splitlines()) == 1
    assert result.stderr == ""


def test_process_unreachable_database_exits_3_with_one_line():
    result = manage("check_sync", DATABASE_URL="postgres://postgres@127.0.0.1:9/nowhere")
    assert result.returncode == 3, result.stderr
    assert result.stdout.startswith("SYNC UNKNOWN - database 'default' unavailable")
    assert len(result.stdout.splitlines()) == 1
    assert result.stderr == ""


@pytest.mark.django_db(transaction=True)
def test_an_interrupted_repair_keeps_and_records_its_committed_batches(
    committed_db, monkeypatch, check_sync
):
    make_pairs(600, level=2)
    with unguarded():
        SpecializationProgress.objects.update(current_level=3)
    real_batch, calls = batch.repair_batch, []

    def second_batch_fails(keys, **kwargs):
        calls.append(len(keys))
        if len(calls) == 2:
            raise OperationalError("deadlock detected")
        return real_batch(keys, **kwargs)

    monkeypatch.setattr(batch, "repair_batch", second_batch_fails)
    exit_code, out, err = check_sync("--repair")
    assert exit_code == 3
    assert out.startswith("SYNC UNKNOWN - repair stopped after 500 repaired pair(s), which are")
    assert "kept: deadlock detected" in out
    assert err == ""
    assert HealthCheckRun.objects.get().repaired == 500
    assert UserLicense.objects.filter(current_level=3).count() == 500


@pytest.mark.django_db
def test_ctrl_c_during_the_check_is_unknown_not_a_traceback(check_sync, monkeypatch):
    # KeyboardInterrupt is no Exception: without its own handler it escaped as a traceback.
    def interrupted(**kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("licenses.consistency.check_pairs", interrupted)
    code, out, err = check_sync()
    assert (code, out, err) == (3, "SYNC UNKNOWN - interrupted before the check completed\n", "")
