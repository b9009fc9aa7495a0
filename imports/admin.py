"""Import runs in the admin: start a file or source import, follow it, read its report.

Starting one needs the add permission on import runs; it is queued for the background
worker (imports/tasks.py) and the page redirects to the run's page, which follows it as a
repair's page does (imports/progress.py, the shared panel) and shows the report when done.
The source is the configured IMPORTS_SOURCE_URL (never typed in the browser), shown
without its password.
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext, ngettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from common.admin_lists import StrictListMixin
from common.runs import count_text
from monitoring.models import RunState

from . import progress, tasks
from .admin_forms import FileImportForm, SourceImportForm
from .admin_report import report_html
from .conf import app_settings
from .exceptions import _without_password
from .models import ImportKind, ImportRun
from .runs import read_state

RUN_PERMISSION = "imports.add_importrun"
NOT_QUEUED = _("The import was not queued: %(error)s.")


@admin.register(ImportRun)
class ImportRunAdmin(StrictListMixin, admin.ModelAdmin):
    change_list_template = "admin/imports/importrun/change_list.html"
    change_form_template = "admin/imports/importrun/change_form.html"
    list_display = [
        "queued_at",
        "kind",
        "state_col",
        "what",
        "dry_run",
        "summary",
        "triggered_by",
        "finished_at",
    ]
    list_filter = ["kind", "state", "dry_run"]
    list_select_related = ["triggered_by"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "kind",
                    "state_col",
                    "what",
                    "ledger_source",
                    "dry_run",
                    "skip_invalid",
                    "triggered_by",
                ]
            },
        ),
        (_("Report"), {"fields": ["report_col"]}),
        (
            pgettext_lazy("fieldset", "Run"),
            {
                "fields": [
                    "where",
                    "job_id",
                    "queued_at",
                    "started_at",
                    "updated_at",
                    "finished_at",
                    "planned",
                    "read_col",
                ]
            },
        ),
    ]
    readonly_fields = [
        "kind",
        "state_col",
        "what",
        "ledger_source",
        "dry_run",
        "skip_invalid",
        "triggered_by",
        "report_col",
        "where",
        "job_id",
        "queued_at",
        "started_at",
        "updated_at",
        "finished_at",
        "planned",
        "read_col",
    ]

    def get_fieldsets(self, request, obj=None):
        # Each kind's own options: a file has a ledger source and lines, a source rows.
        other = {"skip_invalid"} if obj and obj.kind == ImportKind.FILE else set()
        if obj and obj.kind == ImportKind.SOURCE:
            other = {"ledger_source", "planned"}
        return [
            (name, {**options, "fields": [f for f in options["fields"] if f not in other]})
            for name, options in super().get_fieldsets(request, obj)
        ]

    @admin.display(description=_("state"), ordering="state")
    def state_col(self, run):
        state = read_state(run)
        if state == run.state:
            return run.get_state_display()
        return gettext("%(state)s (no report since %(since)s)") % {
            "state": RunState(state).label,
            "since": f"{run.updated_at:%Y-%m-%d %H:%M:%S}",
        }

    @admin.display(description=_("what"))
    def what(self, run):
        return run.file_name if run.kind == ImportKind.FILE else run.source_database

    @admin.display(description=_("outcome"))
    def summary(self, run):
        state = read_state(run)
        report = run.report or {}
        if state in (RunState.QUEUED, RunState.RUNNING):
            return progress.run_progress(run, now=timezone.now()).read_text
        if state == RunState.DONE and run.kind == ImportKind.FILE:
            return gettext("%(events)s new events, %(replays)s already recorded") % {
                "events": count_text(report.get("events", 0)),
                "replays": count_text(report.get("replays", 0)),
            }
        if state == RunState.DONE:
            return gettext("%(new)s new rows, %(changed)s changed") % {
                "new": count_text(sum((report.get("new") or {}).values())),
                "changed": count_text(sum((report.get("changed") or {}).values())),
            }
        if report.get("bad_count"):
            count = report["bad_count"]
            return ngettext("%(count)s bad line", "%(count)s bad lines", count) % {
                "count": count_text(count)
            }
        if report.get("unknown_specializations"):
            return gettext("not in the catalogue: %(codes)s") % {
                "codes": ", ".join(report["unknown_specializations"])
            }
        if report.get("stopped"):
            count = report.get("problems_count", 0)
            return ngettext("%(count)s invalid row", "%(count)s invalid rows", count) % {
                "count": count_text(count)
            }
        reason = run.state_reason or "-"
        return reason if len(reason) <= 80 else reason[:79] + "…"

    @admin.display(description=_("report"))
    def report_col(self, run):
        return report_html(run)

    @admin.display(description=_("read so far"))
    def read_col(self, run):
        if run.kind == ImportKind.FILE:
            return count_text(run.read.get("lines", 0))
        return progress.read_tables(run.read) or "-"

    @admin.display(description=_("where"))
    def where(self, run):
        return gettext("%(host)s pid %(pid)s") % {"host": run.host or "?", "pid": run.pid or "?"}

    def has_add_permission(self, request):
        return False  # the New file import and Run source import pages start runs

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # the record of what came in, and when

    def has_view_permission(self, request, obj=None):
        # Whoever started an import may follow it (its form redirects there).
        own = obj is not None and obj.triggered_by_id == request.user.pk
        return own or super().has_view_permission(request, obj)

    def has_import_permission(self, request) -> bool:
        return request.user.has_perm(RUN_PERMISSION)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("new-file/", view(self.new_file_view), name="imports_importrun_new_file"),
            path("run-source/", view(self.run_source_view), name="imports_importrun_run_source"),
            path(
                "<int:object_id>/progress/",
                view(self.progress_view),
                name="imports_importrun_progress",
            ),
            path(
                "<int:object_id>/run-again/",
                view(self.run_again_view),
                name="imports_importrun_run_again",
            ),
            *super().get_urls(),
        ]

    def _progress(self, run):
        status = tasks.job_status(run) if run.state == RunState.QUEUED else ""
        return progress.run_progress(run, now=timezone.now(), job_status=status)

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_import": self.has_import_permission(request),
        }
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = self.get_object(request, object_id)
        extra_context = dict(extra_context or {})
        if run is not None:
            reading = self._progress(run)
            extra_context["progress"] = reading
            extra_context["can_run_again"] = (
                reading.state == RunState.INTERRUPTED
                and self.has_import_permission(request)
                and (run.kind == ImportKind.SOURCE or bool(run.stored_file))
            )
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

    def _page(self, request, template: str, title: str, **context):
        return TemplateResponse(
            request,
            template,
            {**self.admin_site.each_context(request), "title": title, "opts": self.opts, **context},
        )

    def _queued(self, request, run):
        self.message_user(
            request,
            gettext("Import queued as run %(run)s: this page follows it.") % {"run": run.pk},
            messages.INFO,
        )
        return HttpResponseRedirect(reverse("admin:imports_importrun_change", args=[run.pk]))

    def new_file_view(self, request):
        if not self.has_import_permission(request):
            raise PermissionDenied
        posted = request.method == "POST"
        form = FileImportForm(request.POST, request.FILES) if posted else FileImportForm()
        if posted and form.is_valid():
            try:
                run = tasks.queue_file_import(
                    upload=form.cleaned_data["file"],
                    ledger_source=form.cleaned_data["ledger_source"],
                    dry_run=form.cleaned_data["dry_run"],
                    triggered_by=request.user,
                )
            except tasks.ImportNotQueued as exc:
                self.message_user(request, NOT_QUEUED % {"error": exc}, messages.ERROR)
            else:
                return self._queued(request, run)
        return self._page(
            request,
            "admin/imports/importrun/new_file.html",
            gettext("New file import"),
            form=form,
            show_form=True,
            submit_label=gettext("Upload and import"),
        )

    def run_source_view(self, request):
        if not self.has_import_permission(request):
            raise PermissionDenied
        posted = request.method == "POST"
        form = SourceImportForm(request.POST) if posted else SourceImportForm()
        url = app_settings.IMPORTS_SOURCE_URL.strip()
        postgresql = url.startswith(("postgres://", "postgresql://"))
        if posted and form.is_valid():
            try:
                run = tasks.queue_source_import(
                    dry_run=form.cleaned_data["dry_run"],
                    skip_invalid=form.cleaned_data["skip_invalid"],
                    triggered_by=request.user,
                )
            except tasks.ImportNotQueued as exc:
                self.message_user(request, NOT_QUEUED % {"error": exc}, messages.ERROR)
            else:
                return self._queued(request, run)
        return self._page(
            request,
            "admin/imports/importrun/run_source.html",
            gettext("Run source import"),
            form=form,
            source=_without_password(url),
            setting="IMPORTS_SOURCE_URL",
            configured=bool(url),
            postgresql=postgresql,
            show_form=postgresql,
            submit_label=gettext("Run the import"),
        )

    def run_again_view(self, request, object_id):
        """POST only: queue an interrupted run's import again."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_import_permission(request):
            raise PermissionDenied
        run = self.get_object(request, str(object_id))
        if run is None:
            raise Http404(gettext("run %(run)s does not exist") % {"run": object_id})
        try:
            new = tasks.run_again(run, triggered_by=request.user)
        except tasks.ImportNotQueued as exc:
            self.message_user(request, NOT_QUEUED % {"error": exc}, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:imports_importrun_change", args=[run.pk]))
        return self._queued(request, new)
