"""Monitoring-plugin output (Nagios/Icinga): one status line with performance data.

Format: ``SYNC <STATE> - <text> | 'label'=value[uom];[warn];[crit];[min];[max] ...``.
The consistency rate carries its thresholds in the range syntax (``99:`` means
"alert below 99"), which Nagios graphers read; Icinga 2 drops ranges, so the
same thresholds also come as plain numbers on ``desync_percent`` (alert above).
Importable before Django is set up: ``monitoring.bootstrap`` needs ``unknown_line``.
"""

from .health import CRITICAL, DEGRADED, HEALTHY

EXIT_CODES = {HEALTHY: 0, DEGRADED: 1, CRITICAL: 2}
UNKNOWN = 3
STATES = {HEALTHY: "OK", DEGRADED: "WARNING", CRITICAL: "CRITICAL"}


def _number(value: float) -> str:
    return f"{round(value, 6):g}"  # 99.0 -> "99", 99.999 -> "99.999", 100 - 99.9 -> "0.1"


def status_line(report) -> str:
    state = STATES[report.status]
    text = (
        f"{report.inconsistent} of {report.total_checked} pairs out of sync "
        f"({report.consistency_rate:.2f}%)"
    )
    if report.specialization:
        text += f" in {report.specialization}"
    ledger = []
    if report.ledger_checked is not None:
        text += (
            f", {report.ledger_mismatches} of {report.ledger_checked} progress rows "
            "differ from their ledger"
        )
        ledger = [
            f"'ledger_mismatches'={report.ledger_mismatches};;;0;{report.ledger_checked}",
            f"'ledger_checked'={report.ledger_checked};;;0;",
        ]
    warn_below, critical_below = report.thresholds.warn_below, report.thresholds.critical_below
    desync_percent = 100 - report.consistency_rate  # the complement of the rate shown
    perfdata = " ".join(
        [
            f"'consistency'={report.consistency_rate:.2f}%;{_number(warn_below)}:;"
            f"{_number(critical_below)}:;0;100",
            f"'desync_percent'={desync_percent:.2f}%;{_number(100 - warn_below)};"
            f"{_number(100 - critical_below)};0;100",
            f"'desync'={report.inconsistent};;;0;{report.total_checked}",
            *(f"'{kind}'={count};;;0;" for kind, count in report.by_kind.items()),
            f"'checked'={report.total_checked};;;0;",
            *ledger,
            f"'duration'={report.duration_ms / 1000:.3f}s;;;0;",
        ]
    )
    return f"SYNC {state} - {text} | {perfdata}"


def unknown_line(reason: str) -> str:
    """The could-not-check line: one line whatever the reason holds."""
    return f"SYNC UNKNOWN - {' '.join(reason.split())}"
