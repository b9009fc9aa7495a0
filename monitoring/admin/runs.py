"""The Health check runs history: each run's kind, state and counts, the trend, Run check now."""

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect, JsonResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.formats import number_format
from django.utils.html import format_html, format_html_join
from django.utils.text import format_lazy
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from common.admin_lists import StrictListMixin, change_url_pattern
from common.admin_paginator import EstimatedCountPaginator
from licenses import consistency
from licenses.admin_sync import LABELS

from .. import progress, selectors, services, tasks
from ..models import RunKind, RunState
from ..status import Status
from .trend import STATUS_COLOURS, recent_runs, trend_svg

RUN_PERMISSION = "monitoring.add_healthcheckrun"
# HealthCheckRun keeps one count column per violation kind, named after the kind.
KIND_COUNTS = consistency.VIOLATION_KINDS


def _link(url: str | None, text):
    return text if url is None else format_html('<a href="{}">{}</a>', url, text)


class HealthCheckRunAdmin(StrictListMixin, admin.ModelAdmin):
    """Read-only history; new runs come from cron, ``check_sync`` or the Run-check button."""

    change_list_template = "admin/monitoring/healthcheckrun/change_list.html"
    # A repair run's page follows it live: progress.py reads it, the page polls progress/.
    change_form_template = "admin/monitoring/healthcheckrun/change_form.html"
    list_display = [
        "checked_at",
        "kind",
        "state_col",
        "status_badge",
        "rate",
        "total_checked",
        "inconsistent",
        "kinds",
        "duration",
        "repaired",
        "scope",
        "triggered_by",
    ]
    list_filter = ["kind", "state", "status", "checked_at"]
    list_select_related = ["triggered_by"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    fieldsets = [
        (None, {"fields": ["checked_at", "status_badge", "rate", "triggered_by", "repaired"]}),
        (
            _("Totals"),
            {
                "fields": [
                    "total_checked",
                    "consistent",
                    "inconsistent",
                    *KIND_COUNTS,
                ]
            },
        ),
        (
            pgettext_lazy("fieldset", "Run"),  # not Django's "Run" (the actions' button)
            {
                "fields": [
                    "kind",
                    "state_col",
                    "reason",
                    "dry_run",
                    "scope",
                    "database",
                    "where",
                    "queued_at",
                    "job_id",
                    "started_at",
                    "updated_at",
                    "finished_at",
                    "planned",
                    "examined",
                    "skipped_locked",
                    "duration",
                    "warn_below",
                    "critical_below",
                ]
            },
        ),
        (_("Violation sample"), {"fields": ["violation_table"]}),
        (
            _("Ledger (check_sync --ledger)"),
            {"fields": ["ledger_checked", "ledger_mismatches", "ledger_table"]},
        ),
    ]
    readonly_fields = [
        "kind",
        "state_col",
        "reason",
        "dry_run",
        "where",
        "queued_at",
        "job_id",
        "started_at",
        "updated_at",
        "finished_at",
        "planned",
        "examined",
        "skipped_locked",
        "checked_at",
        "status_badge",
        "rate",
        "triggered_by",
        "repaired",
        "total_checked",
        "consistent",
        "inconsistent",
        *KIND_COUNTS,
        "scope",
        "database",
        "duration",
        "warn_below",
        "critical_below",
        "violation_table",
        "ledger_checked",
        "ledger_mismatches",
        "ledger_table",
    ]

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, run):
        if not run.status:
            return "-"  # no check completed in this run
        return format_html(
            '<strong style="color:#fff;background:{};padding:1px 8px;border-radius:8px">'
            "{}</strong>",
            STATUS_COLOURS.get(run.status, "#555"),
            run.get_status_display(),
        )

    @admin.display(description=_("consistency"), ordering="consistency_rate")
    def rate(self, run):
        if run.consistency_rate is None:
            return "-"
        return f"{number_format(run.consistency_rate, decimal_pos=2)}%"

    @admin.display(description=_("state"), ordering="state")
    def state_col(self, run):
        # A running run that stopped reporting reads as interrupted (selectors.run_state).
        state = selectors.run_state(run, now=timezone.now())
        if state == RunState.QUEUED:
            return gettext("Queued, waiting for a worker (since %(since)s)") % {
                "since": f"{run.queued_at:%Y-%m-%d %H:%M:%S}"
            }
        if state == run.state:
            return run.get_state_display()
        return gettext("%(state)s (no report since %(since)s)") % {
            "state": RunState(state).label,
            "since": f"{run.updated_at:%Y-%m-%d %H:%M:%S}",
        }

    @admin.display(description=_("state reason"))
    def reason(self, run):
        return run.shown_reason or "-"

    @admin.display(description=_("where"))
    def where(self, run):
        return gettext("%(host)s pid %(pid)s") % {"host": run.host or "?", "pid": run.pid or "?"}

    @admin.display(
        description=format_lazy(
            "{} ({})",
            _("by kind"),
            format_lazy(" / ".join(["{}"] * len(KIND_COUNTS)), *(LABELS[k] for k in KIND_COUNTS)),
        )
    )
    def kinds(self, run):
        return " / ".join(str(getattr(run, kind)) for kind in KIND_COUNTS)

    @admin.display(description=_("duration"), ordering="duration_ms")
    def duration(self, run):
        return "-" if run.duration_ms is None else f"{run.duration_ms} ms"

    @admin.display(description=_("specialization"), ordering="specialization")
    def scope(self, run):
        return run.specialization or gettext("all")

    @admin.display(description=_("violations (sample)"))
    def violation_table(self, run):
        if not run.violations_sample:
            return gettext("none")
        user_url = change_url_pattern(get_user_model(), site=self.admin_site)
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    _link(user_url(v["user_id"]), v["user_id"]),
                    v["specialization_id"],
                    "-" if v["progress_level"] is None else v["progress_level"],
                    "-" if v["license_level"] is None else v["license_level"],
                    LABELS.get(v["kind"], v["kind"]),
                )
                for v in run.violations_sample
            ),
        )
        return format_html(
            "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>"
            "</thead><tbody>{}</tbody></table><p>{}</p>",
            gettext("user id"),
            gettext("specialization"),
            gettext("progress level"),
            gettext("licence level"),
            gettext("kind"),
            rows,
            gettext("%(kept)s of %(total)s violations kept with this run.")
            % {"kept": len(run.violations_sample), "total": run.inconsistent},
        )

    @admin.display(description=_("totals that differ from their ledger (sample)"))
    def ledger_table(self, run):
        if not run.ledger_sample:
            return gettext("none") if run.ledger_checked is not None else gettext("not checked")
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (m["user_id"], m["specialization_id"], m["field"], m["total"], m["ledger_sum"])
                for m in run.ledger_sample
            ),
        )
        return format_html(
            "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>"
            "</thead><tbody>{}</tbody></table>",
            gettext("user id"),
            gettext("specialization"),
            gettext("field"),
            gettext("total"),
            gettext("ledger sum"),
            rows,
        )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        # Whoever queued a repair may follow it (the action redirects here), runs
        # permission or not.
        own = obj is not None and obj.triggered_by_id == request.user.pk
        return own or super().has_view_permission(request, obj)

    def has_run_permission(self, request) -> bool:
        return request.user.has_perm(RUN_PERMISSION)

    def get_urls(self):
        return [
            path(
                "run-check/",
                self.admin_site.admin_view(self.run_check_view),
                name="monitoring_healthcheckrun_run_check",
            ),
            path(
                "<int:object_id>/progress/",
                self.admin_site.admin_view(self.progress_view),
                name="monitoring_healthcheckrun_progress",
            ),
            *super().get_urls(),
        ]

    def _progress(self, run):
        status = tasks.job_status(run) if run.state == RunState.QUEUED else ""
        return progress.run_progress(run, now=timezone.now(), job_status=status)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = self.get_object(request, object_id)
        extra_context = dict(extra_context or {})
        if run is not None and run.kind == RunKind.REPAIR:
            extra_context["progress"] = self._progress(run)
        return super().change_view(request, object_id, form_url, extra_context)

    def progress_view(self, request, object_id):
        """The run page's poll: its progress as JSON (never cached)."""
        run = self.get_object(request, str(object_id))
        if run is None:
            raise Http404(gettext("run %(run)s does not exist") % {"run": object_id})
        if not self.has_view_permission(request, run):
            raise PermissionDenied
        response = JsonResponse(self._progress(run).as_dict())
        add_never_cache_headers(response)
        return response

    def changelist_view(self, request, extra_context=None):
        runs = recent_runs()
        extra_context = {
            **(extra_context or {}),
            "title": gettext("Health check runs"),
            "trend_svg": trend_svg(runs),
            "trend_count": len(runs),
            "can_run_check": self.has_run_permission(request),
        }
        return super().changelist_view(request, extra_context)

    def run_check_view(self, request):
        """POST only (admin_view adds login and CSRF checks); needs the add permission."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_run_permission(request):
            raise PermissionDenied
        report = services.run_health_check(triggered_by=request.user)
        self.message_user(
            request,
            gettext(
                "Check recorded: %(status)s, %(rate)s%% consistent, %(left)s desync(s) in"
                " %(total)s pairs (%(ms)s ms)."
            )
            % {
                "status": str(Status(report.status).label).lower(),
                "rate": number_format(f"{report.consistency_rate:.2f}", decimal_pos=2),
                "left": report.inconsistent,
                "total": report.total_checked,
                "ms": report.duration_ms,
            },
            messages.SUCCESS if report.status == "healthy" else messages.WARNING,
        )
        return HttpResponseRedirect(reverse("admin:monitoring_healthcheckrun_changelist"))
