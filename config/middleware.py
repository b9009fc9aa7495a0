"""Refuse a NUL character in a query parameter with a 400 naming the parameter.

PostgreSQL cannot store or compare a NUL in text, so a NUL that reaches a query
is a database error and a 500, wherever the parameter is read: Django's own
views (the admin's autocomplete, for one) as much as ours. No meaningful
query string holds one, so it is refused at the door, once for every view.
Form fields need no such gate: Django's form fields refuse NUL themselves
(ProhibitNullCharactersValidator) and the admin's actions say so as a message.
"""

from django.http import HttpResponseBadRequest

NUL_REFUSED = "Bad query parameter {name!r}: it contains a NUL character."


class RejectNulMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        for name, values in request.GET.lists():
            if "\x00" in name or any("\x00" in value for value in values):
                return HttpResponseBadRequest(
                    NUL_REFUSED.format(name=name), content_type="text/plain; charset=utf-8"
                )
        return self.get_response(request)
