"""Monitoring-plugin output (Nagios/Icinga): one status line with performance data.

Format: ``SYNC <STATE> - <text> | 'label'=value[uom];[warn];[crit];[min];[max] ...``.
Thresholds use the plugin range syntax: ``99:`` means "alert below 99".
"""

from .models import Status

EXIT_CODES = {Status.HEALTHY: 0, Status.DEGRADED: 1, Status.CRITICAL: 2}
UNKNOWN = 3
STATES = {Status.HEALTHY: "OK", Status.DEGRADED: "WARNING", Status.CRITICAL: "CRITICAL"}


def _number(value: float) -> str:
    return f"{value:g}"  # 99.0 -> "99", 99.999 -> "99.999"


def status_line(report) -> str:
    state = STATES[report.status]
    text = (
        f"{report.inconsistent} of {report.total_checked} pairs out of sync "
        f"({report.consistency_rate:.2f}%)"
    )
    if report.specialization:
        text += f" in {report.specialization}"
    warn = _number(report.thresholds.warn_below)
    crit = _number(report.thresholds.critical_below)
    perfdata = " ".join(
        [
            f"'consistency'={report.consistency_rate:.2f}%;{warn}:;{crit}:;0;100",
            f"'desync'={report.inconsistent};;;0;{report.total_checked}",
            *(f"'{kind}'={count};;;0;" for kind, count in report.by_kind.items()),
            f"'checked'={report.total_checked};;;0;",
            f"'duration'={report.duration_ms / 1000:.3f}s;;;0;",
        ]
    )
    return f"SYNC {state} - {text} | {perfdata}"


def unknown_line(reason: str) -> str:
    return f"SYNC UNKNOWN - {reason}"
