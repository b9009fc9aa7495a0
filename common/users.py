"""The users a search matches: for the admin's lists and for the code that reads them."""

from django.contrib import admin
from django.contrib.auth import get_user_model


class _UserSearch(admin.ModelAdmin):
    """Django's own search (terms, quotes) over the user model's username and email."""

    def get_search_fields(self, request):
        return [self.model.USERNAME_FIELD, self.model.get_email_field_name()]


def search_users(query: str):
    """The ids of the users ``query`` matches, in id order (a queryset).

    Django's admin search, with no request: every term (quotes keep a phrase)
    in the username or the email. On PostgreSQL the trigram indexes of
    licenses/migrations/0003 answer it; elsewhere (and without them) it reads
    every user.
    """
    users = get_user_model().objects.all()
    found, _ = _UserSearch(get_user_model(), admin.site).get_search_results(None, users, query)
    return found.order_by("pk").values_list("pk", flat=True)
