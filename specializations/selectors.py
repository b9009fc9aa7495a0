"""Reads other apps and the admin share: the users a search matches."""

from django.contrib import admin
from django.contrib.auth import get_user_model


class _UserSearch(admin.ModelAdmin):
    """Django's own search (terms, quotes) over usernames and emails."""

    search_fields = ["username", "email"]


def search_users(query: str):
    """The ids of the users ``query`` matches, in id order (a queryset).

    Django's admin search, with no request: every term (quotes keep a phrase)
    in the username or the email. On PostgreSQL the trigram indexes of
    licenses/migrations/0003 answer it; elsewhere (and without them) it reads
    every user.
    """
    users = get_user_model().objects.all()
    found, _ = _UserSearch(get_user_model(), admin.site).get_search_results(None, users, query)
    return found.order_by("id").values_list("id", flat=True)
