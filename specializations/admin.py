from django.contrib import admin

from common.admin_lists import StrictListMixin

from .models import Level, Specialization


class LevelInline(admin.TabularInline):
    model = Level
    extra = 0
    fields = [
        "number",
        "name",
        "license_title",
        "required_xp",
        "required_sessions",
        "theory_hours",
        "practice_hours",
        "total_hours",
    ]


@admin.register(Specialization)
class SpecializationAdmin(StrictListMixin, admin.ModelAdmin):
    list_display = ["code", "name", "max_level", "is_active"]
    list_filter = ["is_active"]
    inlines = [LevelInline]

    def get_readonly_fields(self, request, obj=None):
        # The code is the primary key other tables point at: fixed once created.
        return ["code"] if obj else []
