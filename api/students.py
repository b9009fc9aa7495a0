"""A student as a client addresses them: by the product's user id, or by the external id
the client knows, in its namespace (``ApiClient.namespace``: its own name unless it is
configured to send another system's ids, such as ``replaced-system``)."""

from dataclasses import dataclass

from specializations.exceptions import BadStudentReference, UnknownExternalId, UnknownUser
from specializations.selectors import resolve_student

from .problems import Problem

UNKNOWN_STUDENT = "unknown-student"


@dataclass(frozen=True, slots=True)
class UserRef:
    """A user known by id only: what the ledger's services need (``pk``), without a
    model instance (a batch makes a thousand)."""

    pk: int


@dataclass(frozen=True, slots=True)
class Student:
    user: object  # the user, or a UserRef
    external_id: str | None

    @property
    def user_id(self) -> int:
        return self.user.pk

    def as_dict(self) -> dict:
        return {"student_id": self.user.pk, "external_id": self.external_id}


def resolve(client, *, student_id: int | None = None, external_id: str | None = None) -> Student:
    """The addressed student (one query), or a 404 problem naming the field and value."""
    if external_id is None:
        try:
            user = resolve_student(user_id=student_id)
        except (UnknownUser, BadStudentReference) as error:  # no such id, or none possible
            raise Problem(
                404, UNKNOWN_STUDENT, f"student_id={student_id!r} is not a student"
            ) from error
        return Student(user=user, external_id=None)
    try:
        user = resolve_student(source=client.namespace, external_id=external_id)
    except UnknownExternalId as error:
        raise Problem(
            404,
            UNKNOWN_STUDENT,
            f"external_id={external_id!r} is not known in the namespace {client.namespace!r}",
        ) from error
    return Student(user=user, external_id=external_id)
