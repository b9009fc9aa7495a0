"""The users a search matches, and how a list searches and sorts by its user.

The one place that knows which of the user model's fields name a user: its
``USERNAME_FIELD`` and its email field (``get_email_field_name()``), whatever a
host project's model calls them; Django's ``auth.User`` has ``username`` and
``email``.
"""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist


def user_fields() -> list[str]:
    """The user model's fields a search matches: the USERNAME_FIELD, then the email field
    when the model has one and it is another field."""
    model = get_user_model()
    fields = [model.USERNAME_FIELD]
    email = model.get_email_field_name()
    try:
        model._meta.get_field(email)
    except FieldDoesNotExist:
        return fields
    return fields if email in fields else [*fields, email]


def user_search_fields(relation: str) -> list[str]:
    """``search_fields`` of an admin list for the user behind ``relation`` (``"user"``)."""
    return [f"{relation}__{name}" for name in user_fields()]


def user_ordering(relation: str) -> str:
    """The order of an admin list's user column: by the user behind ``relation``'s
    USERNAME_FIELD."""
    return f"{relation}__{get_user_model().USERNAME_FIELD}"


class _UserSearch(admin.ModelAdmin):
    """Django's own search (terms, quotes) over the user model's ``user_fields()``."""

    def get_search_fields(self, request):
        return user_fields()


def search_users(query: str):
    """The ids of the users ``query`` matches, in id order (a queryset).

    Django's admin search, with no request: every term (quotes keep a phrase)
    in the USERNAME_FIELD or the email. On PostgreSQL the trigram indexes of
    licenses/migrations/0003 answer it; elsewhere (and without them) it reads
    every user.
    """
    users = get_user_model().objects.all()
    found, _ = _UserSearch(get_user_model(), admin.site).get_search_results(None, users, query)
    return found.order_by("pk").values_list("pk", flat=True)
