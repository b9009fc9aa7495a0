from django import forms
from django.contrib import admin
from django.template.response import TemplateResponse
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from .exceptions import ApiError
from .models import SCOPES, ApiClient, ApiKey
from .services import create_api_key, require_client_name, revoke_api_keys


class ApiClientForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=[(scope, scope) for scope in SCOPES],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        label=_("scopes"),
    )

    class Meta:
        model = ApiClient
        fields = ["name", "external_id_source", "scopes", "rate_limit_per_minute", "is_active"]

    def clean_name(self):
        try:
            return require_client_name(self.cleaned_data["name"])
        except ApiError as error:
            raise forms.ValidationError(str(error)) from error


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    extra = 0
    fields = ["prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False  # a key is made by the client's action, which shows it once


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    form = ApiClientForm
    list_display = ["name", "namespace", "scope_list", "rate_limit_per_minute", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["name"]
    inlines = [ApiKeyInline]
    actions = ["new_key"]

    @admin.display(description=_("scopes"))
    def scope_list(self, obj):
        return ", ".join(obj.scopes)

    @admin.action(description=_("Create a new key for the selected clients (shown once)"))
    def new_key(self, request, queryset):
        # Shown on the page this answers with, never stored in a message or the session.
        created = [create_api_key(client.name) for client in queryset.order_by("name")]
        page = TemplateResponse(
            request,
            "admin/api/new_keys.html",
            {
                **self.admin_site.each_context(request),
                "title": gettext("New API keys"),
                "keys": created,
            },
        )
        page["Cache-Control"] = "no-store"
        return page


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["prefix", "client", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter), "client"]
    list_select_related = ["client"]
    search_fields = ["prefix", "client__name"]
    fields = ["prefix", "client", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = fields
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    @admin.action(description=_("Revoke the selected keys"))
    def revoke(self, request, queryset):
        count = revoke_api_keys(queryset)
        message = ngettext("%(count)d key revoked.", "%(count)d keys revoked.", count)
        self.message_user(request, message % {"count": count})
