"""check_sync as a monitoring plugin: the status line, its perfdata, the timeout."""

import re
import threading
import time
from dataclasses import dataclass

import psycopg2
import pytest
from django.db import connection

from licenses.models import UserLicense
from monitoring import plugin
from monitoring.models import HealthCheckRun
from monitoring.services import HealthReport, Thresholds
from tests import factories
from tests.conftest import requires_postgres

STATES = {"OK": 0, "WARNING": 1, "CRITICAL": 2, "UNKNOWN": 3}
LINE = re.compile(
    r"SYNC (?P<state>OK|WARNING|CRITICAL|UNKNOWN) - (?P<text>[^|]*?)(?: \| (?P<perf>.*))?"
)
# 'label'=value[uom];[warn];[crit];[min];[max]  (monitoring-plugins guidelines)
DATUM = re.compile(
    r"'(?P<label>[^']+)'=(?P<value>-?[0-9.]+)(?P<unit>[a-zA-Z%]*)"
    r";(?P<warn>[^;\s]*);(?P<crit>[^;\s]*);(?P<min>[^;\s]*);(?P<max>[^;\s]*)"
)


@dataclass(frozen=True)
class Datum:
    label: str
    value: float
    unit: str
    warn: str
    crit: str
    min: str
    max: str


def parse(line: str) -> tuple[str, str, dict[str, Datum]]:
    """The plugin line as (state, text, {label: Datum}); fails on anything malformed."""
    match = LINE.fullmatch(line)
    assert match, line
    perf = match["perf"] or ""
    data = [Datum(**{**m.groupdict(), "value": float(m["value"])}) for m in DATUM.finditer(perf)]
    assert " ".join(m.group(0) for m in DATUM.finditer(perf)) == perf, "unparsed perfdata"
    return match["state"], match["text"], {d.label: d for d in data}


def alerts(range_: str, value: float) -> bool:
    """Plugin range semantics for the forms used here: '' never alerts, 'N:' alerts below N."""
    if not range_:
        return False
    assert re.fullmatch(r"[0-9.]+:", range_), range_
    return value < float(range_[:-1])


def make_pairs(n: int, *, desynced: int = 0) -> None:
    """``n`` pairs at level 1; the first ``desynced`` licences moved to level 2 behind the hook."""
    users = factories.make_pairs(n)
    factories.set_license_level(users[:desynced], "PLAYER", 2)


@pytest.mark.django_db
class TestStatusLine:
    @pytest.mark.parametrize(
        "pairs, desynced, rate, state",
        [
            # One of each state; the boundaries themselves are test_monitor's.
            (100, 0, 100.0, "OK"),
            (1000, 5, 99.5, "OK"),
            (1000, 30, 97.0, "WARNING"),
            (1000, 120, 88.0, "CRITICAL"),
            (10, 10, 0.0, "CRITICAL"),
        ],
    )
    def test_each_status_with_its_perfdata(self, pairs, desynced, rate, state, check_sync):
        make_pairs(pairs, desynced=desynced)
        code, out, err = check_sync("--no-record")
        first = out.splitlines()[0]
        parsed_state, text, perf = parse(first)
        assert (code, parsed_state, err) == (STATES[state], state, "")
        assert text == f"{desynced} of {pairs} pairs out of sync ({rate:.2f}%)"
        assert perf["consistency"] == Datum("consistency", rate, "%", "99:", "95:", "0", "100")
        assert perf["desync_percent"] == Datum(
            "desync_percent", round(100 - rate, 2), "%", "1", "5", "0", "100"
        )
        assert perf["desync"] == Datum("desync", desynced, "", "", "", "0", str(pairs))
        assert perf["checked"] == Datum("checked", pairs, "", "", "", "0", "")
        assert perf["level_mismatch"].value == desynced
        assert perf["missing_license"].value == perf["missing_progress"].value == 0
        assert perf["duration"].unit == "s" and perf["duration"].value >= 0

    @pytest.mark.parametrize(
        "pairs, desynced", [(100, 0), (100, 1), (100, 2), (100, 5), (100, 6), (1000, 11)]
    )
    def test_the_perfdata_thresholds_give_the_same_state_as_the_text(
        self, pairs, desynced, check_sync
    ):
        # A grapher or a second opinion applying the ranges agrees with check_sync.
        make_pairs(pairs, desynced=desynced)
        state, _, perf = parse(check_sync("--no-record")[1].splitlines()[0])
        rate = perf["consistency"]
        derived = (
            "CRITICAL"
            if alerts(rate.crit, rate.value)
            else "WARNING"
            if alerts(rate.warn, rate.value)
            else "OK"
        )
        assert derived == state
        # Icinga 2 keeps only plain-number thresholds: "N" alerts above N (outside 0..N).
        plain = perf["desync_percent"]
        from_plain = (
            "CRITICAL"
            if plain.value > float(plain.crit)
            else "WARNING"
            if plain.value > float(plain.warn)
            else "OK"
        )
        assert from_plain == state

    def test_thresholds_in_force_from_the_command_line(self, check_sync):
        make_pairs(100, desynced=2)
        code, out, _ = check_sync("--no-record", "--warn-below", "97.5", "--critical-below", "90")
        state, _, perf = parse(out.splitlines()[0])
        assert (code, state) == (0, "OK")
        assert (perf["consistency"].warn, perf["consistency"].crit) == ("97.5:", "90:")

    def test_thresholds_in_force_from_settings(self, settings, check_sync):
        settings.SYNC_WARN_BELOW = 99.9
        settings.SYNC_CRITICAL_BELOW = 98
        make_pairs(100, desynced=1)
        code, out, _ = check_sync("--no-record")
        state, _, perf = parse(out.splitlines()[0])
        assert (code, state) == (1, "WARNING")
        assert (perf["consistency"].warn, perf["consistency"].crit) == ("99.9:", "98:")

    def test_an_empty_database_is_ok_at_100_percent(self, check_sync):
        state, text, perf = parse(check_sync("--no-record")[1].splitlines()[0])
        assert (state, text) == ("OK", "0 of 0 pairs out of sync (100.00%)")
        assert perf["desync"].max == "0"

    def test_verbosity_zero_prints_the_status_line_alone(self, check_sync):
        make_pairs(10, desynced=3)
        _, quiet, _ = check_sync("--no-record", "-v", "0")
        _, normal, _ = check_sync("--no-record")
        assert quiet.count("\n") == 1 and quiet.endswith("\n")
        # The same line but for the duration, which differs from run to run.
        without_duration = re.compile(r" 'duration'=\S+")
        assert without_duration.sub("", quiet.rstrip("\n")) == without_duration.sub(
            "", normal.splitlines()[0]
        )
        assert len(normal.splitlines()) == 1 + 1 + 3  # the line, the table's header, 3 rows

    def test_specialization_named_in_the_text(self, check_sync):
        make_pairs(10, desynced=1)
        _, text, _ = parse(
            check_sync("--no-record", "--specialization", "PLAYER")[1].splitlines()[0]
        )
        assert text == "1 of 10 pairs out of sync (90.00%) in PLAYER"


@pytest.mark.parametrize("specialization", [None, "INTERNSHIP"])
def test_text_before_the_pipe_fits_80_characters_at_large_counts(specialization):
    report = HealthReport(
        total_checked=99_999_999,
        consistent=0,
        inconsistent=99_999_999,
        by_kind={"level_mismatch": 99_999_999, "missing_license": 0, "missing_progress": 0},
        consistency_rate=0.0,
        status="critical",
        violations=[],
        duration_ms=123_456,
        thresholds=Thresholds(warn_below=99.0, critical_below=95.0),
        specialization=specialization,
    )
    line = plugin.status_line(report)
    before, _, _ = line.partition(" | ")
    assert len(before) < 80, before
    assert parse(line)[2]["duration"] == Datum("duration", 123.456, "s", "", "", "0", "")


class TestTimeout:
    def assert_unknown(self, code: int, out: str, err: str, timeout: str) -> None:
        assert code == 3
        reason = f"the check did not complete within timeout={float(timeout)!r} seconds"
        assert out == f"SYNC UNKNOWN - {reason}\n"
        assert parse(out.rstrip("\n"))[0] == "UNKNOWN"
        assert err == ""  # the reason once, on stdout; nothing for cron's 2>&1 to put first
        # No finished run: recorded as it started, ended as failed with the reason (issue 13).
        (run,) = HealthCheckRun.objects.all()
        assert (run.state, run.total_checked) == ("failed", None)
        assert "timeout" in run.state_reason or "interrupted" in run.state_reason

    @pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite progress handler")
    @pytest.mark.django_db
    def test_sqlite_tiny_timeout_gives_unknown(self, check_sync):
        # The count over 3000 pairs runs far more VM steps than the handler's
        # granularity; a one-microsecond budget is spent before it finishes.
        make_pairs(3000)
        self.assert_unknown(*check_sync("--timeout", "0.000001"), timeout="0.000001")

    @requires_postgres
    def test_postgres_lock_held_elsewhere_gives_unknown(self, committed_db, check_sync):
        make_pairs(20)
        params = connection.get_connection_params()
        locker = psycopg2.connect(**params)
        try:
            with locker.cursor() as cursor:  # psycopg2 opens a transaction: the lock stays
                cursor.execute(f"LOCK TABLE {UserLicense._meta.db_table} IN ACCESS EXCLUSIVE MODE")
            started = time.monotonic()
            result = check_sync("--timeout", "0.5")
            elapsed = time.monotonic() - started
        finally:
            locker.rollback()
            locker.close()
        self.assert_unknown(*result, timeout="0.5")
        assert elapsed < 5  # gave up instead of waiting for the lock

    @requires_postgres
    def test_postgres_check_completes_once_the_lock_is_released(self, committed_db, check_sync):
        make_pairs(20)
        locker = psycopg2.connect(**connection.get_connection_params())
        with locker.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {UserLicense._meta.db_table} IN ACCESS EXCLUSIVE MODE")
        release = threading.Timer(0.3, locker.rollback)
        release.start()
        try:
            code, out, _ = check_sync("--timeout", "10", "-v", "0")
        finally:
            release.join()
            locker.close()
        assert (code, parse(out.rstrip("\n"))[0]) == (0, "OK")
