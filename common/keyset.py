"""Two-part key order (user, specialization): the condition "after this key", and paging by it.

The admin's key-paged lists and a background repair's case stream both page
this way: no count, no offset, no server-side cursor held between pages.
"""

from collections.abc import Iterator

from django.db.models import Q

PAIR_FIELDS = ("user_id", "specialization_id")


def after_key(fields: tuple[str, str], after: tuple) -> Q:
    """Rows whose (``fields``) key comes after ``after``."""
    (first_field, second_field), (first, second) = fields, after
    later = Q(**{f"{first_field}__gt": first}) | Q(
        **{first_field: first, f"{second_field}__gt": second}
    )
    # The plain bound lets the index scan start at the key; the OR ends the tie.
    return later & Q(**{f"{first_field}__gte": first})


def keyset_pages(keys, *, size: int, fields: tuple[str, str] = PAIR_FIELDS) -> Iterator[tuple]:
    """The rows of a ``values_list(*fields)`` queryset in key order, one short query per page.

    Keyset paging instead of ``iterator()``: no server-side cursor is held
    across repair's committed batches (pgbouncer in transaction mode has none).
    """
    keys = keys.order_by(*fields)
    page = list(keys[:size])
    while len(page) == size:
        yield from page
        page = list(keys.filter(after_key(fields, page[-1]))[:size])
    yield from page
