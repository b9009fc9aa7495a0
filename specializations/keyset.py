"""(user, specialization) key order: the condition "after this key", and paging by it.

The admin's key-paged lists and a background repair's case stream both page
this way: no count, no offset, no server-side cursor held between pages.
"""

from collections.abc import Iterator

from django.db.models import Q


def after_key(after: tuple[int, str], *, user_field: str = "user_id") -> Q:
    """Rows whose (user, specialization) key comes after ``after``."""
    user, specialization = after
    later = Q(**{f"{user_field}__gt": user}) | Q(
        **{user_field: user, "specialization_id__gt": specialization}
    )
    # The plain bound lets the index scan start at the key; the OR ends the tie.
    return later & Q(**{f"{user_field}__gte": user})


def keyset_pages(keys, *, size: int) -> Iterator[tuple[int, str]]:
    """(user, specialization) keys of a ``values_list`` queryset, one short query per page.

    Keyset paging instead of ``iterator()``: no server-side cursor is held
    across repair's committed batches (pgbouncer in transaction mode has none).
    """
    keys = keys.order_by("user_id", "specialization_id")
    page = list(keys[:size])
    while len(page) == size:
        yield from page
        page = list(keys.filter(after_key(page[-1]))[:size])
    yield from page
