"""What every big admin list shares: hostile input refused, cheap rows, key pages.

A query parameter is refused with a 400 naming it, before any query runs, when
it holds a control character (PostgreSQL refuses NUL in a string), is longer
than ``MAX_PARAMETER_LENGTH``, is not ASCII outside the search box (``²`` and
Arabic-Indic digits pass ``str.isdigit()`` and ``int()``), is not one of its
filter's choices, or does not fit the field it filters (a negative or
non-numeric id, a code longer than its column). Django's own "incorrect lookup"
becomes the same 400 instead of a redirect that drops the filter silently.
Malformed action keys and object ids get a message and nothing is done.

No domain in it (common/ imports no app): the pair-keyed lists of the apps build
on it in specializations/admin_lists.py.
"""

import re

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.exceptions import DisallowedModelAdminLookup, DisallowedModelAdminToField
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.templatetags.admin_urls import admin_urlname
from django.contrib.admin.utils import quote
from django.contrib.admin.views.main import PAGE_VAR, SEARCH_VAR, ChangeList
from django.core.exceptions import BadRequest, FieldDoesNotExist
from django.core.paginator import Paginator
from django.db import connections, models
from django.http import HttpResponseBadRequest, HttpResponseRedirect
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .keyset import after_key
from .users import search_users

MAX_PARAMETER_LENGTH = 200
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
ASCII_INTEGER = re.compile(r"-?[0-9]{1,19}")
PAGE_NUMBER = re.compile(r"[1-9][0-9]{0,9}")
AFTER_VAR = "after"  # keyset pages: the key the page starts after
BAD_KEY = _("Nothing was done: %(key)s is not a valid %(name)s key.")


class ListParameterError(BadRequest):
    """A list's query parameter that is refused; the message names it and says why."""


def _refuse(name: str, value: str, why: str) -> ListParameterError:
    shown = value if len(value) <= 40 else value[:40] + "..."
    return ListParameterError(
        gettext("Bad query parameter %(name)s=%(value)s: %(why)s.")
        % {"name": repr(name[:40]), "value": repr(shown), "why": why}
    )


def expected_one_of(allowed) -> str:
    return gettext("expected one of %(values)s") % {"values": ", ".join(sorted(allowed))}


def check_text(name: str, value: str, *, ascii_only: bool = True) -> None:
    if len(value) > MAX_PARAMETER_LENGTH:
        raise _refuse(
            name,
            value,
            gettext("longer than %(limit)s characters") % {"limit": MAX_PARAMETER_LENGTH},
        )
    if CONTROL.search(value):
        raise _refuse(name, value, gettext("control characters (NUL included) are not allowed"))
    if ascii_only and not value.isascii():
        raise _refuse(name, value, gettext("only ASCII is allowed outside the search box"))


def check_query(query) -> None:
    """Shape checks on every parameter of a list's query string (the search box may be Unicode)."""
    for name, values in query.lists():
        check_text(name, name)
        for value in values:
            check_text(name, value, ascii_only=name != SEARCH_VAR)
    for page in query.getlist(PAGE_VAR):
        # Django reads a page it cannot use as the first, and pages only a long list.
        if not PAGE_NUMBER.fullmatch(page):
            raise _refuse(PAGE_VAR, page, gettext("expected a page number from 1"))


def _field_range(field) -> tuple[int, int]:
    low, high = connections["default"].ops.integer_field_range(field.get_internal_type())
    if isinstance(field, models.AutoField) or field.primary_key:
        low = 1  # ids start at 1: a negative or zero id is a mistake, not a query
    return low, high


# Fields whose values are a known set kept as data rather than choices, registered by
# their app in ready() (a specialization code must be one of the catalogue's):
# (model label, field name) -> a callable giving the values.
_known_values: dict[tuple[str, str], object] = {}


def register_known_values(field, values) -> None:
    """A filter on ``field`` accepts only what ``values()`` gives (read at each request)."""
    _known_values[(field.model._meta.label, field.name)] = values


def _allowed(field) -> set[str] | None:
    if field.choices:
        return {str(key) for key, _ in field.flatchoices}
    values = _known_values.get((field.model._meta.label, field.name))
    return None if values is None else {str(value) for value in values()}


def check_field_value(name: str, field, value: str) -> None:
    """``value`` must be something ``field`` can hold (for an exact or range lookup)."""
    allowed = _allowed(field)
    if allowed is not None:
        if value not in allowed:
            raise _refuse(name, value, expected_one_of(allowed))
    elif isinstance(field, models.IntegerField | models.AutoField):
        if not ASCII_INTEGER.fullmatch(value):
            raise _refuse(name, value, gettext("expected a whole number in ASCII digits"))
        low, high = _field_range(field)
        if not low <= int(value) <= high:
            raise _refuse(
                name,
                value,
                gettext("out of range (%(low)s to %(high)s)") % {"low": low, "high": high},
            )
    elif isinstance(field, models.CharField) and len(value) > (field.max_length or len(value)):
        raise _refuse(
            name, value, gettext("longer than the field (%(limit)s)") % {"limit": field.max_length}
        )


VALUE_LOOKUPS = {"exact", "in", "gt", "gte", "lt", "lte"}


def check_lookup(model, name: str, values) -> None:
    """A filter parameter (``kind``, ``user_id``, ``specialization__code__exact``...)."""
    opts, field, lookup = model._meta, None, "exact"
    parts = name.split("__")
    for i, part in enumerate(parts):
        try:
            field = opts.pk if part == "pk" else opts.get_field(part)
        except FieldDoesNotExist:
            if field is None or i != len(parts) - 1:
                raise _refuse(name, "", gettext("not a field of this list")) from None
            lookup = part
            break
        if field.is_relation and i != len(parts) - 1:
            opts = field.related_model._meta
    if field.is_relation:
        field = field.target_field  # the value is the related row's key
    if lookup not in VALUE_LOOKUPS or isinstance(values, bool):
        return  # isnull, dates, text lookups: Django's own conversion refuses the rest
    for value in values if isinstance(values, list | tuple) else [values]:
        check_field_value(name, field, str(value))


class StrictChangeList(ChangeList):
    """Checks every filter's value before the list's queries run; links rows cheaply."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Django merges the preserved filters into each row's link (a resolve() per row:
        # a sixth of a filtered page's time); every row gets the same string.
        self.row_link_filters, self.preserved_filters = self.preserved_filters, ""
        opts = self.opts
        self.change_url = reverse(
            f"admin:{opts.app_label}_{opts.model_name}_change",
            args=["__pk__"],
            current_app=self.model_admin.admin_site.name,
        )

    def url_for_result(self, result):
        url = self.change_url.replace("__pk__", str(quote(getattr(result, self.pk_attname))))
        return f"{url}?{self.row_link_filters}" if self.row_link_filters else url

    def get_filters(self, request):
        found = super().get_filters(request)
        filter_specs, _, remaining, _, _ = found
        for spec in filter_specs:
            if isinstance(spec, admin.SimpleListFilter):
                value = spec.value()
                choices = {str(key) for key, _ in spec.lookup_choices}
                if value not in (None, "") and value not in choices:
                    raise _refuse(spec.parameter_name, value, expected_one_of(choices))
            else:
                for name, values in spec.used_parameters.items():
                    check_lookup(self.model, name, values)
        for name, values in remaining.items():
            check_lookup(self.model, name, values)
        return found


class KeysetChangeList(StrictChangeList):
    """A list in key order, paged by key (``?after=``) and never counted.

    A subclass reads the key (``parse_key``: the ``after=`` text -> a key, or
    None when it is not one; ``key_format`` says what one looks like). The
    model admin names the key's attributes (``keyset_fields``), gives the rows
    (``get_keyset_page``: up to ``size`` after ``cl.after``) and the total when it has one cheaply
    (``get_keyset_count``: (count, exact, where an inexact one comes from) or
    None). A first page that holds the whole list is its own exact count.
    """

    keyset = True
    key_format = _("a key")

    @staticmethod
    def parse_key(text: str) -> tuple | None:
        raise NotImplementedError("a key-paged list says how to read its key")

    def get_queryset(self, request, exclude_parameters=None):
        # Like the page number, the cursor is not a filter (and filter links drop it).
        raw = self.params.pop(AFTER_VAR, None)
        self.filter_params.pop(AFTER_VAR, None)
        self.after = None if raw is None else self.parse_key(raw)
        if raw is not None and self.after is None:
            raise _refuse(
                AFTER_VAR, raw, gettext("expected %(format)s") % {"format": self.key_format}
            )
        # A page number, an order or "show all" (old links) mean nothing here: ignored.
        return super().get_queryset(request, exclude_parameters)

    def get_results(self, request):
        size = self.list_per_page
        rows = list(self.model_admin.get_keyset_page(request, self, size + 1))
        known = self.model_admin.get_keyset_count(request, self)
        self.more = len(rows) > size
        self.result_list = rows[:size]
        if self.after is None and not self.more:
            self.count_exact, self.result_count, self.count_source = True, len(rows), ""
        elif known is not None:
            self.result_count, self.count_exact, self.count_source = known
        else:
            self.count_exact, self.count_source = False, ""
            self.result_count = len(self.result_list) + self.more  # a lower bound
        if self.result_list:
            last = self.result_list[-1]
            key = ":".join(str(getattr(last, name)) for name in self.model_admin.keyset_fields)
            self.next_url = self.get_query_string({AFTER_VAR: key})
        self.first_url = self.get_query_string()
        self.full_result_count = None
        self.show_full_result_count = False
        self.show_admin_actions = True
        self.can_show_all = False
        self.multi_page = False  # no numbered pages (see the pagination template)
        self.paginator = Paginator(self.result_list, size)


def keyset_slice(queryset, fields: tuple[str, str], after, size: int) -> list:
    """Up to ``size`` rows of ``queryset`` after the two-part key ``after``, in key order."""
    queryset = queryset.order_by(*fields)
    if after is not None:
        queryset = queryset.filter(after_key(fields, after))
    return list(queryset[:size])


class StrictListMixin:
    """For a ModelAdmin: strict list parameters, action keys and object ids; cheap checkboxes."""

    def get_changelist(self, request, **kwargs):
        return StrictChangeList

    def get_changelist_instance(self, request):
        check_query(request.GET)
        try:
            return super().get_changelist_instance(request)
        except IncorrectLookupParameters as exc:
            # Django would redirect to ?e=1 and show the list unfiltered, saying nothing.
            cause = exc.args[0] if exc.args else exc
            raise ListParameterError(
                gettext("Bad filter parameters: %(cause)s") % {"cause": cause}
            ) from exc
        except (DisallowedModelAdminLookup, DisallowedModelAdminToField) as exc:
            raise ListParameterError(
                gettext("Bad filter parameters: %(cause)s") % {"cause": exc}
            ) from exc

    def changelist_view(self, request, extra_context=None):
        try:
            return super().changelist_view(request, extra_context)
        except ListParameterError as exc:
            # Plain text: the message repeats what was sent, so it must not be HTML.
            return HttpResponseBadRequest(str(exc), content_type="text/plain; charset=utf-8")

    def key_error(self, key: str) -> str | None:
        """Why ``key`` (an action checkbox's value or a URL's object id) is not a key, or None."""
        try:
            check_text("key", key)
            check_field_value("key", self.opts.pk, key)
        except ListParameterError as exc:
            return str(exc)
        return None

    def response_action(self, request, queryset, *args, **kwargs):
        # Across all pages the checked keys are not used (Django's action form reads so).
        across = forms.BooleanField(required=False).to_python(request.POST.get("select_across"))
        for key in [] if across else request.POST.getlist(helpers.ACTION_CHECKBOX_NAME):
            if self.key_error(key):
                name = self.opts.verbose_name
                self.message_user(
                    request, BAD_KEY % {"key": repr(key), "name": name}, messages.ERROR
                )
                return HttpResponseRedirect(request.get_full_path())
        return super().response_action(request, queryset, *args, **kwargs)

    def get_object(self, request, object_id, from_field=None):
        # int() takes '١٢' for 12: an id that is not plain ASCII names no row here.
        if from_field is None and self.key_error(object_id):
            return None
        return super().get_object(request, object_id, from_field)

    def action_checkbox(self, obj):
        # Django renders each row's checkbox through the form-widget templates: a third
        # of a 100-row page's time. The same markup, formatted directly.
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" aria-label="{}">',
            helpers.ACTION_CHECKBOX_NAME,
            str(obj.pk),
            gettext("Select this object for an action - %(obj)s") % {"obj": obj},
        )


def change_url_pattern(model, *, site=admin.site):
    """pk -> the admin change page of ``model``'s row (None for None), from one reverse()
    for a whole page; always None when ``model`` has no admin page (a host project's
    user model may have none). Named through the model's meta: a custom user model's too.
    """
    try:
        pattern = reverse(admin_urlname(model._meta, "change"), args=["0"], current_app=site.name)
    except NoReverseMatch:
        return lambda pk: None
    head, _, tail = pattern.rpartition("/0/")
    return lambda pk: None if pk is None else f"{head}/{pk}/{tail}"


class UserFirstSearchMixin:
    """Search a list of pair rows by its user: find the users, then their rows by key.

    Django joins the users to every row and matches the text there; at a million
    rows that join is the page's time. Up to ``search_users_limit`` matching users,
    the rows are read by their user ids instead; a broader search falls back to
    Django's own.
    """

    search_users_limit = 1_000
    search_user_field = "user_id"

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return super().get_search_results(request, queryset, search_term)
        ids = list(search_users(search_term)[: self.search_users_limit + 1])
        if len(ids) > self.search_users_limit:
            return super().get_search_results(request, queryset, search_term)
        return queryset.filter(**{f"{self.search_user_field}__in": ids}), False
