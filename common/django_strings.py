"""Django's own strings that the product's admin pages show and Django 6's Hungarian lacks.

Nothing imports this module: it only marks Django's msgids, word for word, so that
``makemessages`` copies them into this app's catalogue, where they are translated.
Django merges every installed app's catalogue into one; a msgid its own Hungarian
lacks is found in ours, wherever ``common`` stands in INSTALLED_APPS (a host project
does nothing), and once Django translates one itself, its own translation wins for an
app listed before ``common``, as ``django.contrib.admin`` is.

tests/test_django_strings.py fails when one of these is no longer Django's msgid (an
upgrade renamed it) or when Django's Hungarian has it now (drop it here).
"""

from django.utils.translation import gettext_noop, ngettext_lazy

MARKED = (
    # The navigation sidebar and the index's app tables (captions for screen readers).
    gettext_noop("Model name"),
    gettext_noop("Add link"),
    gettext_noop("Change or view list link"),
    # Every list: the search heading, the actions' empty choice and their button.
    gettext_noop("Search %(name)s"),
    gettext_noop("- Select an option -"),
    gettext_noop("Run"),
    # A change history's pages.
    gettext_noop("Pagination %(name)s entries"),
    # Deleting one object (an API client, a check run, a specialization).
    gettext_noop(
        "Are you sure you want to delete the %(object_name)s “%(escaped_object)s”? All of "
        "the following related items will be deleted:"
    ),
    gettext_noop(
        "Deleting the %(object_name)s “%(escaped_object)s” would result in deleting "
        "related objects, but your account doesn't have permission to delete the "
        "following types of objects:"
    ),
    gettext_noop(
        "Deleting the %(object_name)s “%(escaped_object)s” would require deleting the "
        "following protected related objects:"
    ),
    # Django has no ngettext_noop; the lazy object is never evaluated.
    ngettext_lazy("…and %(count)d more object.", "…and %(count)d more objects.", "count"),
)
