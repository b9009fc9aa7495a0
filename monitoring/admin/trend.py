"""The consistency-rate trend on the Health check runs page: inline SVG built on the server."""

from decimal import Decimal

from django.utils.formats import number_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import ngettext

from licenses.admin_sync import BAD, GOOD, WARNING

from ..models import HealthCheckRun, RunState, Status

STATUS_COLOURS = {Status.HEALTHY: GOOD, Status.DEGRADED: WARNING, Status.CRITICAL: BAD}
WIDTH, HEIGHT, PAD_X, PAD_Y = 640, 180, 44, 16
TREND_RUNS = 30


def recent_runs(limit: int = TREND_RUNS) -> list[dict]:
    """The last ``limit`` finished runs, oldest first (one query; others have no rate)."""
    finished = HealthCheckRun.objects.filter(state=RunState.DONE)
    rows = finished.order_by("-checked_at", "-id").values(
        "id", "checked_at", "consistency_rate", "status", "warn_below", "critical_below"
    )[:limit]
    return list(reversed(rows))


def trend_svg(runs: list[dict]) -> SafeString:
    if not runs:
        return mark_safe("")
    latest = runs[-1]
    rates = [Decimal(r["consistency_rate"]) for r in runs]
    floor = min([*rates, Decimal(latest["critical_below"])])
    low = max(Decimal(0), Decimal(int(floor)) - 1)
    span = Decimal(100) - low or Decimal(1)
    step = (WIDTH - 2 * PAD_X) / max(len(runs) - 1, 1)

    def y(rate) -> float:
        return round(PAD_Y + float((Decimal(100) - Decimal(rate)) / span) * (HEIGHT - 2 * PAD_Y), 1)

    points = [(round(PAD_X + i * step, 1), y(r["consistency_rate"])) for i, r in enumerate(runs)]
    guides = format_html_join(
        "",
        '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="{}" stroke-dasharray="4 3"/>'
        '<text x="{}" y="{}" font-size="10" text-anchor="end" fill="{}">{}%</text>',
        (
            (
                PAD_X,
                WIDTH - PAD_X,
                y(v),
                y(v),
                colour,
                PAD_X - 4,
                y(v) + 3,
                colour,
                number_format(v),
            )
            for v, colour in (
                (latest["warn_below"], STATUS_COLOURS[Status.DEGRADED]),
                (latest["critical_below"], STATUS_COLOURS[Status.CRITICAL]),
            )
        ),
    )
    dots = format_html_join(
        "",
        '<circle cx="{}" cy="{}" r="4" fill="{}"><title>{}: {}% ({})</title></circle>',
        (
            (
                x,
                py,
                STATUS_COLOURS.get(r["status"], "#555"),
                f"{r['checked_at']:%Y-%m-%d %H:%M}",
                number_format(r["consistency_rate"], decimal_pos=2),
                Status(r["status"]).label if r["status"] else "-",
            )
            for (x, py), r in zip(points, runs, strict=True)
        ),
    )
    return format_html(
        '<svg class="sync-trend" role="img" width="{w}" height="{h}" viewBox="0 0 {w} {h}"'
        ' xmlns="http://www.w3.org/2000/svg" aria-label="{label}">'
        '<rect x="0" y="0" width="{w}" height="{h}" fill="none"/>'
        '<text x="{px}" y="{top}" font-size="10" text-anchor="end" fill="currentColor">100%</text>'
        '<text x="{px}" y="{bottom}" font-size="10" text-anchor="end" fill="currentColor">{low}%'
        "</text>{guides}"
        '<polyline fill="none" stroke="#417690" stroke-width="2" points="{points}"/>{dots}</svg>',
        w=WIDTH,
        h=HEIGHT,
        label=ngettext(
            "Consistency rate of the last %(count)s run",
            "Consistency rate of the last %(count)s runs",
            len(runs),
        )
        % {"count": len(runs)},
        px=PAD_X - 4,
        top=PAD_Y + 3,
        bottom=HEIGHT - PAD_Y + 3,
        low=low,
        guides=guides,
        points=" ".join(f"{x},{py}" for x, py in points),
        dots=dots,
    )
