"""The Desync cases page: the live violations of the one definition, with repair.

Seeing it needs the view permission on desync cases; repairing needs change
permission on licences. A repair writes licence history with the staff user,
an admin log entry per repaired pair, and is recorded as one run (with the check
after it); a second repair over an overlapping scope is refused while one runs.
"""

from collections.abc import Iterator

from django.contrib import admin, messages
from django.contrib.admin import ShowFacets, helpers
from django.contrib.admin.views.main import ORDER_VAR, PAGE_VAR
from django.contrib.auth import get_user_model
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.formats import number_format
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from common.admin_lists import StrictListMixin
from common.admin_paginator import small_tables
from common.users import user_ordering, user_search_fields
from licenses import consistency
from licenses.admin_sync import LABELS, kind_badge
from licenses.models import UserLicense
from specializations.admin_lists import PairKeysetChangeList, parse_pair_key
from specializations.catalogue import all_specializations
from specializations.exceptions import ProgressionError
from specializations.models import SpecializationProgress

from .. import selectors, services, tasks
from ..conf import app_settings
from ..exceptions import RepairAlreadyRunning, RepairInterrupted
from ..models import DesyncCase
from ..repair.audit import logged_as
from ..status import Status
from . import desync_list

REPAIR_PERMISSION = "licenses.change_userlicense"
REFUSED = _("Repair refused: %(error)s.")
NOTHING_CHANGED = _("Repair refused, nothing was changed: %(error)s")
STOPPED = _("Repair stopped: %(error)s. %(done)s case(s) repaired before the error are kept.")
CONFIRMATION_SAMPLE = 100
# The list's paging and ordering say nothing about which cases a job repairs.
IGNORED_FOR_SELECTION = (PAGE_VAR, ORDER_VAR)


def parse_key(key: str) -> tuple[int, str] | None:
    """``"<user_id>:<specialization>"`` -> (user_id, specialization); None when malformed.

    ASCII digits only: ``str.isdigit()`` takes "²" (which int() refuses) and int()
    takes "١٢" (12).
    """
    return parse_pair_key(key)


class DesyncCaseAdmin(StrictListMixin, admin.ModelAdmin):
    list_display = ["user_link", "specialization_code", "progress_link", "licence_link", "kind_col"]
    list_display_links = None
    list_filter = ["kind", "specialization"]
    list_select_related = ["user"]
    search_fields = user_search_fields("user")
    show_full_result_count = False
    show_facets = ShowFacets.NEVER  # a facet would count every case
    sortable_by = ()  # one order: (user, specialization), paged by key
    list_per_page = 100
    actions = ["repair_selected"]
    keyset_fields = ("user_id", "specialization_id")

    # The list (desync_list.py): the page comes from the one desync query by key range,
    # never from a scan or a count of the view; the view's queryset serves the actions.

    def get_changelist(self, request, **kwargs):
        return PairKeysetChangeList

    def get_keyset_page(self, request, cl, size: int) -> list[DesyncCase]:
        filters = desync_list.page_filters(request)
        recorded = self.get_keyset_count(request, cl)
        found = desync_list.violation_page(
            filters=filters,
            query=cl.query,
            after=cl.after,
            size=size,
            expected=recorded[0] if recorded else None,
        )
        return desync_list.cases(found)

    def get_keyset_count(self, request, cl):
        """Exact while the tables are small (a count of the view); beyond, the latest check's."""
        if not hasattr(cl, "known_count"):
            if small_tables(SpecializationProgress, UserLicense):
                cl.known_count = (cl.queryset.count(), True, "")
            else:
                filters = desync_list.page_filters(request)
                cl.known_count = desync_list.recorded_count(filters, searched=bool(cl.query))
        return cl.known_count

    def key_error(self, key: str) -> str | None:
        if parse_pair_key(key) is None:
            return gettext("%(key)r: expected <user id>:<specialization>") % {"key": key}
        return None

    def changelist_view(self, request, extra_context=None):
        extra_context = {"title": gettext("Desync cases (live)"), **(extra_context or {})}
        return super().changelist_view(request, extra_context)

    @admin.display(description=_("specialization"), ordering="specialization_id")
    def specialization_code(self, case):
        return case.specialization_id

    # The row links are built with the page (desync_list.cases): one reverse() per column.

    @admin.display(description=_("user"), ordering=user_ordering("user"))
    def user_link(self, case):
        name = case.user.get_username()
        email = getattr(case.user, case.user.get_email_field_name(), "")
        if case.user_url is None:
            return format_html('{} <span class="quiet">{}</span>', name, email)
        return format_html(
            '<a href="{}">{}</a> <span class="quiet">{}</span>', case.user_url, name, email
        )

    @staticmethod
    def _row_link(url, level):
        if url is None:
            return format_html('<span class="quiet">{}</span>', gettext("none"))
        return format_html(
            '<a href="{}">{}</a>', url, gettext("level %(level)s") % {"level": level}
        )

    @admin.display(description=_("progress"), ordering="progress_level")
    def progress_link(self, case):
        return self._row_link(case.progress_url, case.progress_level)

    @admin.display(description=_("licence"), ordering="license_level")
    def licence_link(self, case):
        return self._row_link(case.license_url, case.license_level)

    @admin.display(description=_("kind"), ordering="kind")
    def kind_col(self, case):
        return kind_badge(case.kind)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_repair_permission(self, request) -> bool:
        return request.user.has_perm(REPAIR_PERMISSION)

    @admin.action(description=_("Repair selected desync cases"), permissions=["repair"])
    def repair_selected(self, request, queryset):
        across = request.POST.get("select_across") == "1"
        if across:
            # Every matching case, possibly millions: counted and sampled in the
            # database, as the background job that repairs them will select them.
            cases = selectors.desync_cases(self._selection(request)).order_by()
            keys = cases.values_list("user_id", "specialization_id")
            count = keys.count
            scope = request.GET.get("specialization__code__exact")
        else:
            checked = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
            keys = [pair for key in checked if (pair := parse_key(key))]
            count = lambda: len(keys)  # noqa: E731
            scope = keys[0][1] if len({spec for _, spec in keys}) == 1 else None
        if scope not in all_specializations():
            scope = None  # the selection spans specializations: claim them all
        # More than a request should carry goes to a worker; its run page follows it.
        background = across or len(keys) > app_settings.SYNC_ADMIN_INLINE_REPAIR_LIMIT
        if request.POST.get("post") == "yes":
            reason = request.POST.get("reason", "")
            if background:
                return self._queue(
                    request, pairs=None if across else keys, reason=reason, specialization=scope
                )
            return self._repair(request, iter(keys), reason=reason, specialization=scope)
        return self._confirmation(
            request,
            sample=list(keys[:CONFIRMATION_SAMPLE]),
            count=count(),
            background=background,
        )

    @staticmethod
    def _selection(request) -> str:
        """The list's query string as the cases it selects (``selectors.desync_cases``)."""
        query = request.GET.copy()
        for name in IGNORED_FOR_SELECTION:
            query.pop(name, None)
        return query.urlencode()

    def _queue(self, request, *, pairs, reason: str, specialization):
        """Queue a background repair and go to its run's page (``monitoring.tasks``)."""
        try:
            run = tasks.queue_repair_job(
                repaired_by=request.user,
                specialization=specialization,
                reason=reason,
                pairs=pairs,
                query=self._selection(request),
            )
        except RepairAlreadyRunning as exc:
            self.message_user(request, REFUSED % {"error": exc}, messages.ERROR)
            return None
        except (ProgressionError, tasks.JobNotQueued) as exc:
            self.message_user(request, NOTHING_CHANGED % {"error": exc}, messages.ERROR)
            return None
        if pairs is None:
            queued = gettext(
                "Repair of every matching case queued as run %(run)s: a background worker"
                " repairs them; this page follows it."
            )
        else:
            queued = gettext(
                "Repair of %(count)s selected case(s) queued as run %(run)s: a background"
                " worker repairs them; this page follows it."
            )
        self.message_user(
            request, queued % {"count": len(pairs or ()), "run": run.pk}, messages.INFO
        )
        return HttpResponseRedirect(
            reverse("admin:monitoring_healthcheckrun_change", args=[run.pk])
        )

    def _confirmation(
        self, request, *, sample: list[tuple[int, str]], count: int, background: bool
    ):
        shown = consistency.classify(sample)
        users = get_user_model().objects.in_bulk({user_id for user_id, _ in shown})
        cases = [
            {"user": users.get(state.user_id), "state": state, "badge": kind_badge(state.kind)}
            for state in shown.values()
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Repair desync cases"),
            "opts": self.opts,
            "cases": cases,
            "count": count,
            "more": max(0, count - len(cases)),
            "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "background": background,
        }
        return TemplateResponse(
            request, "admin/monitoring/desynccase/repair_confirmation.html", context
        )

    def _repair(self, request, pairs: Iterator[tuple[int, str]], *, reason: str, specialization):
        """Repair and record (``services.repair``); the message says what happened."""
        try:
            report = services.repair(
                pairs=pairs,
                specialization=specialization,
                repaired_by=request.user,
                reason=reason,
                options=services.RepairOptions(on_batch=logged_as(request.user)),
            )
        except RepairAlreadyRunning as exc:
            # Single flight: another repair holds an overlapping scope; nothing written.
            self.message_user(request, REFUSED % {"error": exc}, messages.ERROR)
            return None
        except RepairInterrupted as exc:
            # A database error (a deadlock, a lost connection) rolls back its own
            # batch only: the batches before it stay, with their log entries and
            # their count in the run.
            self.message_user(
                request,
                STOPPED % {"error": exc.error, "done": exc.done}
                if exc.done
                else NOTHING_CHANGED % {"error": exc.error},
                messages.ERROR,
            )
            return None
        except ProgressionError as exc:
            # Bad input (an over-long reason, a vanished staff user) is refused
            # before the first batch: nothing is written.
            self.message_user(request, NOTHING_CHANGED % {"error": exc}, messages.ERROR)
            return None
        check = report.check
        kinds = ", ".join(
            f"{LABELS.get(kind, kind)} {n}" for kind, n in sorted(report.by_kind.items())
        )
        message = gettext("Repaired %(repaired)s desync case(s)") % {"repaired": report.repaired}
        if kinds:
            message += f" ({kinds})"
        message += gettext("; %(skipped)s already in sync.") % {"skipped": report.skipped}
        if report.skipped_locked:
            message += " " + gettext(
                "%(locked)s case(s) were locked by another transaction and are left for the"
                " next repair."
            ) % {"locked": report.skipped_locked}
        message += " " + gettext(
            "New health check: %(status)s, %(rate)s%% consistent, %(left)s desync(s) left"
            " (run %(run)s)."
        ) % {
            "status": str(Status(check.status).label).lower(),
            "rate": number_format(f"{check.consistency_rate:.2f}", decimal_pos=2),
            "left": check.inconsistent,
            "run": report.run.pk,
        }
        self.message_user(
            request, message, messages.WARNING if report.skipped_locked else messages.SUCCESS
        )
        return None  # back to the list
