"""check_sync's output beside the status line (``plugin.py``): the human report, JSON, a bar.

Functions of a report, returning text: the command only parses, calls the
services and writes what these return.
"""

import json

DEFAULT_LIMIT = 20  # violations (and repair actions) shown to a person


def human_lines(report, repair_report=None, *, limit: int | None, verbosity: int) -> list[str]:
    """The status line, then (from verbosity 1) the repair summary and a violations table."""
    from .plugin import status_line

    lines = [status_line(report)]
    if verbosity < 1:
        return lines
    limit = DEFAULT_LIMIT if limit is None else limit
    if repair_report is not None:
        lines += _repair_lines(repair_report, limit=limit)
    violations = report.violations[:limit]
    if violations:
        lines.append(
            f"{'user_id':>10}  {'specialization':<14}  {'progress':>8}  {'licence':>7}  kind"
        )
        lines += [
            f"{v.user_id:>10}  {v.specialization_id:<14}  "
            f"{'-' if v.progress_level is None else v.progress_level:>8}  "
            f"{'-' if v.license_level is None else v.license_level:>7}  {v.kind}"
            for v in violations
        ]
        if report.inconsistent > len(violations):
            lines.append(f"... and {report.inconsistent - len(violations)} more")
    lines += _ledger_lines(report, limit=limit)
    return lines


def _ledger_lines(report, *, limit: int) -> list[str]:
    """The totals that differ from their ledger (check_sync --ledger), one line each."""
    mismatches = report.ledger_violations[:limit]
    if not mismatches:
        return []
    lines = [
        f"{'user_id':>10}  {'specialization':<14}  {'field':<24}  {'total':>12}  {'ledger':>12}"
    ]
    lines += [
        f"{m.user_id:>10}  {m.specialization_id:<14}  {m.field:<24}  {m.total:>12}  "
        f"{m.ledger_sum:>12}"
        for m in mismatches
    ]
    shown_rows = len({(m.user_id, m.specialization_id) for m in mismatches})
    if report.ledger_mismatches > shown_rows:
        lines.append(f"... and {report.ledger_mismatches - shown_rows} more progress rows")
    return lines


def _repair_lines(repair_report, *, limit: int) -> list[str]:
    verb = "would repair" if repair_report.dry_run else "repaired"
    kinds = ", ".join(f"{k}={n}" for k, n in sorted(repair_report.by_kind.items()))
    left, run = repair_report.skipped_locked, repair_report.run
    lines = [
        f"{verb} {repair_report.repaired} pair(s)"
        + (f" ({kinds})" if kinds else "")
        + f", {repair_report.skipped} already in sync"
        + (f", {left} left: locked by another transaction (run again)" if left else "")
        + f", in {repair_report.duration_ms} ms"
        + (f" (run {run.pk})" if run else "")
    ]
    lines += [
        f"  user {user_id} {specialization}: locked, left for later"
        for user_id, specialization in repair_report.skipped_sample[:limit]
    ]
    if repair_report.dry_run:
        lines += [
            f"  user {a.user_id} {a.specialization_id}: {a.kind} -> {a.action} "
            f"to level {a.target_level}"
            for a in repair_report.actions[:limit]
        ]
    return lines


def json_text(report, repair_report=None, *, limit: int | None, indent: int | None) -> str:
    """The report under DESIGN.md's field names; with a repair, its summary and actions.

    Indented for a person at a terminal, compact for programs: json's C encoder
    serves only compact output, and indenting a 1,000-row sample is a visible
    share of a check's time (BENCHMARKS.md).
    """
    data = report.as_dict()
    if limit is not None:
        data["violations"] = data["violations"][:limit]
        data["ledger_violations"] = data["ledger_violations"][:limit]
    if repair_report is not None:
        data["repair"] = repair_report.as_dict()
        data["repair"]["actions"] = [a.as_dict() for a in repair_report.actions[:limit]]
    return json.dumps(data, indent=indent)


class ProgressBar:
    """``repairing [#####.....] done/total``, redrawn in place on a command's OutputWrapper."""

    width = 30

    def __init__(self, wrapper, total: int):
        self.wrapper, self.total = wrapper, total

    def __call__(self, done: int) -> None:
        filled = min(self.width, self.width * done // self.total)
        bar = "#" * filled + "." * (self.width - filled)
        self.wrapper.write(f"\rrepairing [{bar}] {done}/{self.total}", ending="")
        self.wrapper.flush()

    def close(self) -> None:
        self.wrapper.write("")
