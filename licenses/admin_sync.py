"""Sync state in the admin lists, from the one desync definition (``consistency``).

The column costs one query per page (``classify`` of the page's pairs). The
filter keeps the rows whose pair is of one kind (``row_kind_condition``: a
merge join or anti-join with the other table); a filtered list is in (user,
specialization) order and paged by key, so a page stops after its rows instead
of classifying every pair, and it is not counted.
"""

from django.contrib import admin
from django.db.models import BooleanField
from django.db.models.expressions import RawSQL
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from common.admin_lists import AFTER_VAR, StrictChangeList
from common.admin_paginator import small_tables
from specializations.admin_lists import PairKeysetChangeList, keyset_slice, parse_pair_key
from specializations.models import SpecializationProgress

from . import consistency
from .models import UserLicense
from .planner import page_scope

# Good, warning and bad news on every admin page: a pair's kind here, a run's status
# in the monitor's pages (monitoring/admin/trend.py).
GOOD, WARNING, BAD = "#2e7d32", "#b26a00", "#c62828"
COLOURS = {consistency.OK: GOOD, **dict.fromkeys(consistency.VIOLATION_KINDS, BAD)}
LABELS = dict(consistency.Kind.choices)


def kind_badge(kind: str | None):
    if kind is None:
        return "-"
    return format_html(
        '<strong style="color:{}">{}</strong>', COLOURS.get(kind, "inherit"), LABELS.get(kind, kind)
    )


class SyncStateResults:
    """Classifies the page's pairs in one query and puts the state on each row."""

    def get_results(self, request):
        super().get_results(request)
        user_attr = self.model_admin.sync_user_attr
        rows = list(self.result_list)
        states = consistency.classify(
            (getattr(row, user_attr), row.specialization_id) for row in rows
        )
        for row in rows:
            state = states.get((getattr(row, user_attr), row.specialization_id))
            row.sync_state = state.kind if state else None
        self.result_list = rows


class SyncStateChangeList(SyncStateResults, StrictChangeList):
    pass


class SyncStateKeysetChangeList(SyncStateResults, PairKeysetChangeList):
    """The list filtered by sync state: in key order, paged by key."""


class SyncStateFilter(admin.SimpleListFilter):
    title = _("sync state")
    parameter_name = "sync"

    def lookups(self, request, model_admin):
        return [(kind, LABELS[kind]) for kind in model_admin.sync_kinds]

    def queryset(self, request, queryset):
        if self.value() not in consistency.KINDS:
            return queryset
        # A page that starts after a key reads the other table from there too.
        after = parse_pair_key(request.GET.get(AFTER_VAR, ""))
        sql, params = consistency.row_kind_condition(
            queryset.model, self.value(), after_user=after[0] if after else None
        )
        return queryset.filter(RawSQL(sql, params, output_field=BooleanField()))


class SyncStateAdminMixin:
    """For a ModelAdmin over one side of the pair: a sync-state column and filter."""

    sync_user_attr = "user_id"
    sync_kinds = consistency.KINDS

    def _filtered_by_sync(self, request) -> bool:
        return request.GET.get(SyncStateFilter.parameter_name) in self.sync_kinds

    def get_changelist(self, request, **kwargs):
        if self._filtered_by_sync(request):
            return SyncStateKeysetChangeList
        return SyncStateChangeList

    def get_sortable_by(self, request):
        # A key-paged list has one order.
        return () if self._filtered_by_sync(request) else super().get_sortable_by(request)

    @property
    def keyset_fields(self) -> tuple[str, str]:
        return (self.sync_user_attr, "specialization_id")

    def get_keyset_page(self, request, cl, size: int) -> list:
        # The one query that finds the page's pairs, under the merge-join page plan
        # (BENCHMARKS.md, "Admin list pages").
        with page_scope(cl.queryset.db):
            return keyset_slice(cl.queryset, self.sync_user_attr, cl.after, size)

    def get_keyset_count(self, request, cl):
        # While the tables are small a count is cheap; beyond, it would classify every
        # pair (the latest check's counts per kind are on the Desync cases page).
        if small_tables(SpecializationProgress, UserLicense):
            return cl.queryset.count(), True, ""
        return None

    @admin.display(description=_("sync state"))
    def sync_state_badge(self, obj):
        return kind_badge(getattr(obj, "sync_state", None))
