"""Admin for progress rows, licences and the licence history.

A level changed here goes through ``update_level_atomic``: both rows move
together and the licence history names the staff user and the reason.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import ShowFacets
from django.contrib.admin.widgets import ForeignKeyRawIdWidget
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from common.admin_lists import StrictListMixin, UserFirstSearchMixin
from common.admin_paginator import EstimatedCountPaginator
from common.users import user_ordering, user_search_fields
from specializations.catalogue import all_specializations, get_specialization
from specializations.exceptions import ProgressionError
from specializations.models import SpecializationProgress

from . import consistency, guard, services
from .admin_ledger import CORRECTION_FIELDS, CorrectionFormMixin, LedgerAdminMixin
from .admin_sync import SyncStateAdminMixin, SyncStateFilter
from .models import LicenseProgression, UserLicense

REASON_REQUIRED = _("Say why the level changes: it is recorded in the licence history.")


class LevelChangeForm(forms.ModelForm):
    """Adds the reason that a level change writes into the licence history."""

    reason = forms.CharField(
        max_length=255,
        required=False,
        label=_("reason"),
        help_text=_("Required when the level changes; recorded in the licence history."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and "current_level" in self.fields:
            self.fields["current_level"].help_text = _(
                "Changing it moves the progress row and the licence together."
            )

    def clean(self):
        cleaned = super().clean()
        level_changed = "current_level" in self.changed_data
        if self.instance.pk and level_changed and not (cleaned.get("reason") or "").strip():
            self.add_error("reason", REASON_REQUIRED)
        # On add too: a new progress row issues its licence at this level (the hook).
        if level_changed or not self.instance.pk:
            self._check_level_range(cleaned)
        return cleaned

    def _check_level_range(self, cleaned) -> None:
        level = cleaned.get("current_level")
        if self.instance.pk:
            specialization = self.instance.specialization_id
        else:
            specialization = getattr(cleaned.get("specialization"), "pk", None)
        if level is None or specialization is None:
            return  # the field's own error is already reported
        try:
            info = get_specialization(specialization)
        except ProgressionError as exc:
            raise forms.ValidationError(str(exc)) from exc
        if not 1 <= level <= info.max_level:
            self.add_error(
                "current_level",
                gettext("Choose a level from 1 to %(max_level)s.") % {"max_level": info.max_level},
            )


class ProgressForm(CorrectionFormMixin, LevelChangeForm):
    """A progress row: its level (with the licence) and corrections of its totals."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reason"].help_text = _(
            "Required when the level changes or the totals are corrected; recorded in the "
            "licence history and the ledger."
        )

    def clean(self):
        cleaned = super().clean()
        self.clean_correction(cleaned)
        return cleaned


class LevelFilter(admin.SimpleListFilter):
    """Levels from the cached catalogue: no SELECT DISTINCT over a million rows."""

    title = _("current level")
    parameter_name = "level"

    def lookups(self, request, model_admin):
        top = max((info.max_level for info in all_specializations().values()), default=0)
        return [(str(n), str(n)) for n in range(1, top + 1)]

    def queryset(self, request, queryset):
        # str.isdigit() takes "²", which int() refuses, and int() takes "١٢" (12).
        value = self.value()
        if value and value.isascii() and value.isdigit():
            return queryset.filter(current_level=int(value))
        return queryset


class LevelChangeAdminMixin:
    """save_model for a row of the pair: a level change moves both rows atomically."""

    def save_model(self, request, obj, form, change):
        if not change:
            return super().save_model(request, obj, form, change)
        # Only the fields the form changed: a stale current_level loaded with the
        # form must not be written back over a level earned since.
        columns = {field.name for field in obj._meta.concrete_fields}
        others = [
            name
            for name in form.changed_data
            if name not in ("current_level", "reason") and name in columns
        ]
        if "current_level" not in form.changed_data:
            # A save without current_level does not fire the auto-sync hook.
            return obj.save(update_fields=others)
        with transaction.atomic():
            # update_level_atomic locks progress, then the licence; the other fields
            # are saved after it, on rows already locked, so this path keeps the lock
            # order of every other writer (licence first would risk a deadlock).
            result = services.update_level_atomic(
                self.pair_user(obj),
                obj.specialization_id,
                new_level=obj.current_level,
                advanced_by=request.user,
                reason=form.cleaned_data["reason"],
            )
            if others:
                obj.save(update_fields=others)
        obj.refresh_from_db()
        return result


GUARD_REFUSED = _("Nothing was deleted: %(reason)s. Delete the student to remove both rows.")


class GuardRefusalAdminMixin:
    """Deleting one row of a pair is refused by the commit guard (PostgreSQL): say so.

    The guard's check runs inside the delete's transaction, before the admin
    writes its log entry and its success message, so a refusal rolls back both
    and comes back as an error message instead of a 500.
    """

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        guard.check_now()

    def delete_queryset(self, request, queryset):
        super().delete_queryset(request, queryset)
        guard.check_now()

    def _refused(self, request, exc: IntegrityError) -> None:
        self.message_user(
            request, GUARD_REFUSED % {"reason": guard.guard_message(exc)}, messages.ERROR
        )

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except IntegrityError as exc:
            if not guard.is_guard_error(exc):
                raise
            self._refused(request, exc)
            opts = self.opts
            return HttpResponseRedirect(
                reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[object_id])
            )

    def response_action(self, request, queryset, **kwargs):
        # delete_selected logs before it deletes: one transaction, so that a refused
        # delete takes its log entries with it.
        try:
            with transaction.atomic():
                return super().response_action(request, queryset, **kwargs)
        except IntegrityError as exc:
            if not guard.is_guard_error(exc):
                raise
            self._refused(request, exc)
            return HttpResponseRedirect(request.get_full_path())


@admin.register(SpecializationProgress)
class SpecializationProgressAdmin(
    LedgerAdminMixin,
    GuardRefusalAdminMixin,
    SyncStateAdminMixin,
    UserFirstSearchMixin,
    StrictListMixin,
    LevelChangeAdminMixin,
    admin.ModelAdmin,
):
    form = ProgressForm
    sync_user_attr = search_user_field = "student_id"
    sync_kinds = (consistency.OK, consistency.LEVEL_MISMATCH, consistency.MISSING_LICENSE)
    list_display = [
        "student",
        "specialization",
        "current_level",
        "total_xp",
        "completed_sessions",
        "sync_state_badge",
        "last_activity",
    ]
    list_filter = ["specialization", SyncStateFilter, LevelFilter]
    list_select_related = ["student", "specialization"]
    search_fields = user_search_fields("student")
    show_full_result_count = False
    show_facets = ShowFacets.NEVER  # a facet is a count over a million rows
    paginator = EstimatedCountPaginator

    def get_autocomplete_fields(self, request):
        # Searched through the user model's admin; a host project may have none for its
        # own user model (admin.E039 otherwise): then the student is a raw id.
        return ["student"] if self.admin_site.is_registered(get_user_model()) else []

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "student" and not self.get_autocomplete_fields(request):
            kwargs["widget"] = ForeignKeyRawIdWidget(db_field.remote_field, self.admin_site)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    fields = [
        "student",
        "specialization",
        "current_level",
        "reason",
        "total_xp",
        "completed_sessions",
        "completed_projects",
        "theory_hours_completed",
        "practice_hours_completed",
        "last_activity",
        *CORRECTION_FIELDS,
        "correction_key",
    ]

    def get_readonly_fields(self, request, obj=None):
        fixed = ["student", "specialization"] if obj else []
        return [*fixed, *super().get_readonly_fields(request, obj)]

    def get_fields(self, request, obj=None):
        # The reason is recorded with a level change; a new row has none to record.
        fields = super().get_fields(request, obj)
        return fields if obj else [name for name in fields if name != "reason"]

    @staticmethod
    def pair_user(obj):
        return obj.student


class LicenseProgressionInline(admin.TabularInline):
    model = LicenseProgression
    fields = ["created_at", "from_level", "to_level", "actor", "reason"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = _("history")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("advanced_by")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(UserLicense)
class UserLicenseAdmin(
    GuardRefusalAdminMixin,
    SyncStateAdminMixin,
    UserFirstSearchMixin,
    StrictListMixin,
    LevelChangeAdminMixin,
    admin.ModelAdmin,
):
    form = LevelChangeForm
    sync_kinds = (consistency.OK, consistency.LEVEL_MISMATCH, consistency.MISSING_PROGRESS)
    list_display = [
        "user",
        "specialization",
        "current_level",
        "max_achieved_level",
        "sync_state_badge",
        "is_active",
        "last_advanced_at",
    ]
    list_filter = ["specialization", SyncStateFilter, LevelFilter, "is_active"]
    list_select_related = ["user", "specialization"]
    search_fields = user_search_fields("user")
    show_full_result_count = False
    show_facets = ShowFacets.NEVER  # a facet is a count over a million rows
    paginator = EstimatedCountPaginator
    fields = [
        "user",
        "specialization",
        "current_level",
        "reason",
        "max_achieved_level",
        "is_active",
        "started_at",
        "last_advanced_at",
    ]
    readonly_fields = [
        "user",
        "specialization",
        "max_achieved_level",
        "started_at",
        "last_advanced_at",
    ]
    inlines = [LicenseProgressionInline]

    def has_add_permission(self, request):
        # Licences are issued from progress (enrolment, sync, repair), never typed in.
        return False

    @staticmethod
    def pair_user(obj):
        return obj.user


class ActorFilter(admin.SimpleListFilter):
    title = _("changed by")
    parameter_name = "actor"

    def lookups(self, request, model_admin):
        return [("system", _("the system")), ("staff", _("a staff user"))]

    def queryset(self, request, queryset):
        if self.value() in ("system", "staff"):
            return queryset.filter(advanced_by__isnull=self.value() == "system")
        return queryset


@admin.register(LicenseProgression)
class LicenseProgressionAdmin(StrictListMixin, admin.ModelAdmin):
    """The licence history: read-only for everyone."""

    list_display = [
        "created_at",
        "license",
        "user",
        "specialization",
        "from_level",
        "to_level",
        "actor",
        "reason",
    ]
    list_filter = ["license__specialization", ActorFilter, "created_at"]
    list_select_related = ["license__user", "advanced_by"]
    search_fields = [*user_search_fields("license__user"), "reason"]
    show_full_result_count = False
    show_facets = ShowFacets.NEVER  # a facet is a count over a million rows
    paginator = EstimatedCountPaginator

    @admin.display(description=_("user"), ordering=user_ordering("license__user"))
    def user(self, obj):
        return obj.license.user

    @admin.display(description=_("specialization"), ordering="license__specialization_id")
    def specialization(self, obj):
        return obj.license.specialization_id

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
