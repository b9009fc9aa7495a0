"""Reads shared by the services, the HTTP API and the imports.

A student is addressed by a user id or by the id a sending system knows them by
(``ExternalId``: unique per source). ``resolve_student`` is the one place that
turns either into a user, with an error naming the field and the value.
"""

from django.contrib.auth import get_user_model

from .exceptions import BadStudentReference, UnknownExternalId, UnknownUser
from .models import ExternalId

EITHER = "give either user_id, or source and external_id"


# The largest id a 64-bit column holds: a larger one names nobody (and SQLite's driver
# cannot even send it).
MAX_ID = 2**63 - 1


def _integer_id(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise BadStudentReference("user_id", value, f"must be a whole number from 1 to {MAX_ID}")
    return value


def resolve_student(*, user_id=None, source: str | None = None, external_id: str | None = None):
    """The user named by ``user_id`` or by (``source``, ``external_id``): one query.

    Raises ``BadStudentReference`` for a reference of the wrong shape (neither,
    both, half of the pair), ``UnknownUser`` (field ``user_id``) and
    ``UnknownExternalId`` for one that names nobody.
    """
    if user_id is not None:
        if source is not None or external_id is not None:
            raise BadStudentReference("user_id", user_id, f"and an external id given: {EITHER}")
        found = get_user_model()._default_manager.filter(pk=_integer_id(user_id)).first()
        if found is None:
            raise UnknownUser(user_id, field="user_id")
        return found
    if external_id is None:
        raise BadStudentReference("external_id", external_id, f"is missing: {EITHER}")
    if source is None:
        raise BadStudentReference("source", source, "is required with external_id")
    if not isinstance(external_id, str) or not external_id:
        raise BadStudentReference("external_id", external_id, "must be a non-empty string")
    link = (
        ExternalId.objects.select_related("user")
        .filter(source=source, external_id=external_id)
        .first()
    )
    if link is None:
        raise UnknownExternalId(external_id, source=source)
    return link.user
