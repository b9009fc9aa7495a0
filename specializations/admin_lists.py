"""The admin lists keyed by (user, specialization) pairs: the key, its pages.

The generic machinery (strict parameters, key pages, the user search) is in
common/admin_lists.py; this is what the pair's key adds to it.
"""

import re

from django.utils.translation import gettext_lazy as _

from common.admin_lists import KeysetChangeList
from common.admin_lists import keyset_slice as keyset_slice_by

from .catalogue import all_specializations

PAIR_KEY = re.compile(r"([1-9][0-9]{0,18}):([A-Z][A-Z0-9_]{0,49})")  # models.CODE_PATTERN


def parse_pair_key(text: str) -> tuple[int, str] | None:
    """``"<user id>:<specialization>"`` -> (user id, code); None unless ASCII, positive, known."""
    match = PAIR_KEY.fullmatch(text)
    if match is None or match[2] not in all_specializations():
        return None
    return int(match[1]), match[2]


class PairKeysetChangeList(KeysetChangeList):
    """A list in (user, specialization) order, paged by the pair's key.

    The model admin's ``keyset_fields`` name the user and the specialization attribute.
    """

    key_format = _("<user id>:<specialization>")
    parse_key = staticmethod(parse_pair_key)


def keyset_slice(queryset, user_field: str, after, size: int) -> list:
    """Up to ``size`` rows of ``queryset`` after the pair key ``after``, in key order."""
    return keyset_slice_by(queryset, (user_field, "specialization_id"), after, size)
