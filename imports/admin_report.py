"""An import run's report on its admin page: what the import read, would change or changed.

The same figures as the commands print (import_progress, import_source), from the
report the run kept: a file's counts and its bad lines (line, field, problem); a
source's rows per table (found, new, changed, unchanged, left out), its desyncs by
kind, the specializations the catalogue lacks and the invalid rows (table, row id,
field, problem). The problems are the import's own words (English, as in the
commands' output); everything around them is translated.
"""

from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext, ngettext

from common.runs import count_text
from licenses.consistency import VIOLATION_KINDS, Kind

from .models import ImportKind, ImportRun
from .progress import TABLE_LABELS


def report_html(run: ImportRun) -> SafeString | str:
    report = run.report or {}
    if not report:
        return gettext("none yet") if run.finished_at is None else gettext("none")
    if run.kind == ImportKind.FILE:
        return _file(report)
    return _source(report)


def _table(headings, rows) -> SafeString:
    head = format_html_join("", "<th>{}</th>", ((h,) for h in headings))
    cells = "".join(
        format_html("<tr>{}</tr>", format_html_join("", "<td>{}</td>", ((c,) for c in row)))
        for row in rows
    )
    return format_html(
        "<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", head, SafeString(cells)
    )


def _shown(shown: int, count: int) -> str:
    if count <= shown:
        return ""
    return gettext("The first %(shown)s of %(count)s.") % {
        "shown": count_text(shown),
        "count": count_text(count),
    }


def _file(report: dict) -> SafeString:
    written = report.get("written")
    figures = _table(
        [gettext("figure"), gettext("count")],
        [
            (gettext("ledger source"), report.get("source", "")),
            (gettext("lines"), count_text(report.get("lines", 0))),
            (
                gettext("new events (written)") if written else gettext("new events (to write)"),
                count_text(report.get("events", 0)),
            ),
            (gettext("already recorded"), count_text(report.get("replays", 0))),
            (gettext("pairs"), count_text(report.get("pairs", 0))),
            (gettext("newly enrolled"), count_text(report.get("enrolled", 0))),
            (gettext("levels raised"), count_text(report.get("levels_raised", 0))),
            (gettext("licences moved"), count_text(report.get("licences_moved", 0))),
            (gettext("licences issued"), count_text(report.get("licences_issued", 0))),
        ],
    )
    bad = report.get("bad") or []
    if not bad:
        return figures
    count = report.get("bad_count", len(bad))
    return format_html(
        "{}<h3>{}</h3>{}<p>{}</p>",
        figures,
        ngettext("%(count)s bad line", "%(count)s bad lines", count) % {"count": count_text(count)},
        _table(
            [gettext("line"), gettext("field"), gettext("problem")],
            [(b["line"], b["field"], b["message"]) for b in bad],
        ),
        _shown(len(bad), count),
    )


def _source(report: dict) -> SafeString:
    parts = []
    if codes := report.get("unknown_specializations"):
        parts.append(
            format_html(
                '<p class="errornote">{}</p>',
                gettext(
                    "Specializations in the source that the catalogue does not hold: %(codes)s."
                )
                % {"codes": ", ".join(codes)},
            )
        )
    found = report.get("found", {})
    left_out = report.get("left_out") or {}
    headings = [
        gettext("table"),
        gettext("found"),
        gettext("new"),
        gettext("changed"),
        gettext("unchanged"),
        gettext("left out"),
    ]
    rows = [
        (
            label,
            count_text(found.get(table, 0)),
            *(
                count_text(report[key][table]) if table in (report.get(key) or {}) else "-"
                for key in ("new", "changed", "unchanged")
            ),
            count_text(left_out.get(table, 0)),
        )
        for table, label in TABLE_LABELS.items()
    ]
    parts.append(_table(headings, rows))
    desyncs = report.get("desyncs") or {}
    if desyncs:
        kinds = ", ".join(
            f"{count_text(desyncs.get(kind, 0))} {Kind(kind).label}" for kind in VIOLATION_KINDS
        )
        parts.append(
            format_html(
                "<p>{}</p>",
                gettext(
                    "Desyncs in the source, by this product's definition: %(kinds)s (of %(pairs)s"
                    " pairs)."
                )
                % {"kinds": kinds, "pairs": count_text(report.get("pairs", 0))},
            )
        )
        if sum(desyncs.values()):
            parts.append(
                format_html(
                    '<p>{} <a href="{}">{}</a></p>',
                    gettext(
                        "They are imported as they are: check_sync reports them after the import;"
                        " repair them with the usual, audited tools."
                    ),
                    reverse("admin:monitoring_desynccase_changelist"),
                    gettext("Desync cases"),
                )
            )
    problems = report.get("problems") or []
    if problems:
        count = report.get("problems_count", len(problems))
        heading = (
            ngettext("%(count)s invalid row, left out", "%(count)s invalid rows, left out", count)
            if report.get("skip_invalid")
            else ngettext("%(count)s invalid row", "%(count)s invalid rows", count)
        )
        parts.append(
            format_html(
                "<h3>{}</h3>{}<p>{}</p>",
                heading % {"count": count_text(count)},
                _table(
                    [gettext("table"), gettext("row id"), gettext("field"), gettext("problem")],
                    [(p["table"], p["row_id"], p["field"], p["message"]) for p in problems],
                ),
                _shown(len(problems), count),
            )
        )
    return SafeString("".join(parts))
