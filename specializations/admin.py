import json

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.forms.models import BaseInlineFormSet
from django.utils.html import format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from common.admin_lists import StrictListMixin, register_known_values

from .catalogue import all_specializations, clear_cache
from .catalogue_load import CHECKED_FIELDS
from .models import Level, Specialization

XP_FALLS = _(
    "Required XP must not fall as the level rises: level %(number)s asks %(xp)s, "
    "level %(previous)s %(previous_xp)s."
)
FOLLOW_QUEUED = _(
    "Levels %(levels)s of %(code)s ask less than before: students who now reach them move up "
    "in a background job (manage.py db_worker runs it)."
)
FOLLOW_NOT_QUEUED = _(
    "The catalogue change is saved, but the job that moves students up could not be queued "
    "(%(error)s); they move up at their next progress update."
)


# Every admin list refuses a specialization filter the catalogue does not hold (the
# code has no choices: it is data).
register_known_values(Specialization._meta.pk, all_specializations)


class LevelFormSet(BaseInlineFormSet):
    def clean(self):
        super().clean()
        levels = sorted(
            (form.cleaned_data["number"], form.cleaned_data["required_xp"])
            for form in self.forms
            if form.cleaned_data
            and not form.cleaned_data.get("DELETE")
            and form.cleaned_data.get("number") is not None
            and form.cleaned_data.get("required_xp") is not None
        )
        for (previous, previous_xp), (number, xp) in zip(levels, levels[1:], strict=False):
            if xp < previous_xp:
                raise ValidationError(
                    XP_FALLS
                    % {"number": number, "xp": xp, "previous": previous, "previous_xp": previous_xp}
                )

    def eased_levels(self) -> set[int]:
        """Levels this formset will save that are new or ask less of a checked requirement
        (call before saving)."""
        eased = set()
        for form in self.forms:
            if not form.has_changed() or form.cleaned_data.get("DELETE"):
                continue
            number = form.cleaned_data.get("number")
            renumbered = "number" in form.changed_data
            if (
                form in self.extra_forms
                or renumbered
                or any(
                    form.cleaned_data[name] < form.initial[name]
                    for name in CHECKED_FIELDS
                    if name in form.changed_data
                )
            ):
                eased.add(number)
        return {n for n in eased if n and n > 1}


class LevelInline(admin.TabularInline):
    model = Level
    formset = LevelFormSet
    extra = 0
    fields = [
        "number",
        "name",
        "name_en",
        "shown_name",
        "license_title",
        "required_xp",
        "required_sessions",
        "required_projects",
        "theory_hours",
        "practice_hours",
        "total_hours",
        "unchecked",
    ]
    readonly_fields = ["shown_name", "unchecked"]

    @admin.display(description=_("shown as"))
    def shown_name(self, level: Level):
        """The name this page's language shows (``Level.shown_name``)."""
        return level.shown_name if level.pk else "-"

    @admin.display(description=_("not checked by the product"))
    def unchecked(self, level: Level):
        """The requirements kept from the catalogue file that no level check reads."""
        return (
            format_html_join(
                ", ",
                "{}: {}",
                (
                    (key, _shown(value))
                    for key, value in (level.unchecked_requirements or {}).items()
                ),
            )
            or "-"
        )


@admin.register(Specialization)
class SpecializationAdmin(StrictListMixin, admin.ModelAdmin):
    list_display = ["code", "name", "max_level", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["code", "name"]
    fields = ["code", "name", "description", "max_level", "is_active", "other_keys"]
    readonly_fields = ["other_keys"]
    inlines = [LevelInline]
    actions = ["deactivate", "activate"]

    def get_readonly_fields(self, request, obj=None):
        # The code is the primary key other tables point at: fixed once created.
        return ["code", *self.readonly_fields] if obj else list(self.readonly_fields)

    @admin.display(description=_("other keys from the catalogue file (kept, not used)"))
    def other_keys(self, spec: Specialization):
        return ", ".join(f"{key}: {_shown(value)}" for key, value in spec.extra.items()) or "-"

    @admin.action(description=_("Deactivate the selected specializations (no new progress)"))
    def deactivate(self, request, queryset):
        changed = queryset.update(is_active=False)
        clear_cache(using=queryset.db)
        message = ngettext(
            "%(count)d specialization deactivated.",
            "%(count)d specializations deactivated.",
            changed,
        )
        self.message_user(request, message % {"count": changed}, messages.SUCCESS)

    @admin.action(description=_("Activate the selected specializations"))
    def activate(self, request, queryset):
        changed = queryset.update(is_active=True)
        clear_cache(using=queryset.db)
        message = ngettext(
            "%(count)d specialization activated.", "%(count)d specializations activated.", changed
        )
        self.message_user(request, message % {"count": changed}, messages.SUCCESS)

    def save_formset(self, request, form, formset, change):
        eased = formset.eased_levels() if isinstance(formset, LevelFormSet) else set()
        super().save_formset(request, form, formset, change)
        if "max_level" in form.changed_data and change:
            old, new = form.initial["max_level"], form.cleaned_data["max_level"]
            eased |= set(range(old + 1, new + 1))
        if eased and change:
            self._queue_follow(request, form.instance.code, sorted(eased))

    def _queue_follow(self, request, code: str, levels: list[int]) -> None:
        """Enqueue the job in the edit's transaction: the ORM backend's job row commits with
        the edit (a worker cannot see it before), or neither does."""
        from .tasks import follow_catalogue_job

        try:
            with transaction.atomic():  # a savepoint: a refused enqueue leaves the edit whole
                follow_catalogue_job.enqueue(specialization=code, levels=levels)
        except Exception as exc:  # the task backend's store: anything it raises
            self.message_user(request, FOLLOW_NOT_QUEUED % {"error": exc}, messages.ERROR)
            return
        shown = ", ".join(map(str, levels))
        self.message_user(request, FOLLOW_QUEUED % {"levels": shown, "code": code}, messages.INFO)


def _shown(value) -> str:
    if isinstance(value, list):
        return "; ".join(map(str, value))
    return json.dumps(value, ensure_ascii=False) if isinstance(value, dict) else str(value)
