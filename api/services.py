"""Writes of the API app: clients and their keys."""

import re
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from . import keys, selectors
from .exceptions import BadClientName, UnknownScope
from .models import NAME_PATTERN, SCOPES, ApiClient, ApiKey

# The ledger's own sources: a client named so would be mistaken for them.
RESERVED_NAMES = ("admin", "opening", "system")


@dataclass(frozen=True, slots=True)
class NewKey:
    """``key`` is shown once, here; only its digest is stored."""

    api_key: ApiKey
    key: str


def require_scopes(scopes) -> list[str]:
    scopes = list(scopes)
    for scope in scopes:
        if scope not in SCOPES:
            raise UnknownScope(",".join(map(str, scopes)), scope=scope, choices=SCOPES)
    return sorted(set(scopes), key=SCOPES.index)


def require_client_name(name: str) -> str:
    if not isinstance(name, str) or not re.fullmatch(NAME_PATTERN, name) or name in RESERVED_NAMES:
        raise BadClientName(name, reserved=RESERVED_NAMES)
    return name


def create_api_key(client: str, *, scopes=None, external_id_source: str | None = None) -> NewKey:
    """A new key for the client named ``client``, created when missing. ``scopes`` and
    ``external_id_source``, when given, replace the client's."""
    require_client_name(client)
    scopes = None if scopes is None else require_scopes(scopes)
    if external_id_source:
        require_client_name(external_id_source)
    with transaction.atomic():
        api_client, created = ApiClient.objects.select_for_update().get_or_create(
            name=client,
            defaults={"scopes": scopes or [], "external_id_source": external_id_source or ""},
        )
        changes = {}
        if not created and scopes is not None and scopes != api_client.scopes:
            changes["scopes"] = scopes
        if not created and external_id_source is not None:
            changes["external_id_source"] = external_id_source
        if changes:
            for name, value in changes.items():
                setattr(api_client, name, value)
            api_client.save(update_fields=list(changes))
        key, prefix, digest = keys.new_key()
        api_key = ApiKey.objects.create(client=api_client, prefix=prefix, digest=digest)
    return NewKey(api_key=api_key, key=key)


def revoke_api_keys(api_keys) -> int:
    """Revoke the given keys (a queryset); already revoked ones keep their date. They are
    refused at once by this process and wherever API_KEY_CACHE is shared; elsewhere
    within API_KEY_CACHE_SECONDS."""
    with transaction.atomic():
        prefixes = list(api_keys.filter(revoked_at__isnull=True).values_list("prefix", flat=True))
        count = ApiKey.objects.filter(prefix__in=prefixes, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        transaction.on_commit(lambda: selectors.forget_keys(prefixes))
    return count
