"""The project's user model as import_source writes it: its table, its columns, its limits.

Django's ``auth.User`` or a host project's own model (``AUTH_USER_MODEL``): the
username goes to ``USERNAME_FIELD`` (the email, as the replaced system knows
its users), the email to ``EMAIL_FIELD`` when that is another field, the names
to ``first_name`` / ``last_name`` when the model has them. The model must have
an automatic integer primary key and the ``is_active`` and ``is_staff`` fields;
any other column it requires is filled as Django would fill it (its default).
A model the import cannot fill is refused before anything is read or written,
naming the field.
"""

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import connections
from django.db.models import NOT_PROVIDED, BooleanField, CharField
from django.db.models.fields import AutoFieldMixin

from .exceptions import UnsupportedUserModel

# The replaced system's flags: the product needs a field for each.
REQUIRED_FLAGS = ("is_active", "is_staff")
NAMES = ("first_name", "last_name")
# Filled by the import itself, or left empty where the model allows it.
WRITTEN_ELSEWHERE = frozenset({"password", "is_superuser", "date_joined", *REQUIRED_FLAGS, *NAMES})


@dataclass(frozen=True, slots=True)
class UserColumns:
    """Quoted SQL names on the model's table; None where the model has no such field."""

    table: str
    pk: str
    pk_column: str  # unquoted: pg_get_serial_sequence takes it as it is
    table_name: str  # unquoted, for the same
    password: str
    username: str
    email: str | None
    first_name: str | None
    last_name: str | None
    is_active: str
    is_staff: str
    is_superuser: str | None
    date_joined: str | None
    # Other columns the model requires: (quoted column, the value its default gives).
    defaults: tuple[tuple[str, object], ...]
    # The longest value each staged user field may have (the staged email is the username).
    lengths: dict[str, int]


def user_columns(*, using: str = "default") -> UserColumns:
    """The model's columns, or UnsupportedUserModel naming what it lacks."""
    model = get_user_model()
    label = model._meta.label
    quote = connections[using].ops.quote_name
    fields = {field.name: field for field in model._meta.concrete_fields}

    pk = model._meta.pk
    if not isinstance(pk, AutoFieldMixin):
        raise UnsupportedUserModel(
            label, pk.name, f"is a {type(pk).__name__}: the import needs an automatic integer key"
        )
    if not isinstance(fields.get("password"), CharField):
        raise UnsupportedUserModel(label, "password", "is missing: imported accounts get none")
    username = fields.get(model.USERNAME_FIELD)
    if not isinstance(username, CharField):
        raise UnsupportedUserModel(
            label, model.USERNAME_FIELD, "(USERNAME_FIELD) must be a text field: it gets the email"
        )
    for flag in REQUIRED_FLAGS:
        if not isinstance(fields.get(flag), BooleanField):
            raise UnsupportedUserModel(
                label, flag, "is missing: the import keeps the replaced system's flag there"
            )
    email = fields.get(model.get_email_field_name())
    if email is username or not isinstance(email, CharField):
        email = None
    lengths = {"email": min(f.max_length for f in (username, email) if f is not None)}
    for name in NAMES:
        if isinstance(fields.get(name), CharField):
            lengths[name] = fields[name].max_length

    mapped = {pk.name, username.name, *(f.name for f in (email,) if f is not None)}
    defaults = []
    for field in model._meta.concrete_fields:
        if field.name in mapped or field.name in WRITTEN_ELSEWHERE:
            continue
        if field.null or field.db_default is not NOT_PROVIDED:
            continue  # the database fills it
        value = field.get_default()  # what Model() would store; one value for every row
        if value is None or field.unique:
            raise UnsupportedUserModel(
                label, field.name, "is required and the import has no value for it"
            )
        defaults.append((quote(field.column), field.get_db_prep_save(value, connections[using])))

    def column(name: str) -> str | None:
        field = fields.get(name)
        return None if field is None else quote(field.column)

    return UserColumns(
        table=quote(model._meta.db_table),
        pk=quote(pk.column),
        pk_column=pk.column,
        table_name=model._meta.db_table,
        password=column("password"),
        username=quote(username.column),
        email=None if email is None else quote(email.column),
        first_name=column("first_name") if "first_name" in lengths else None,
        last_name=column("last_name") if "last_name" in lengths else None,
        is_active=column("is_active"),
        is_staff=column("is_staff"),
        is_superuser=column("is_superuser"),
        date_joined=column("date_joined"),
        defaults=tuple(defaults),
        lengths=lengths,
    )
