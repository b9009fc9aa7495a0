"""The auto-sync hooks: the licence follows every saved progress row, and levels
follow a catalogue change.

Connected in ``LicensesConfig.ready()``; ``licenses.checks`` reports E001 when
one is not connected.
"""

from django.db.models.signals import post_save

from specializations.catalogue import SpecializationInfo
from specializations.levels import catalogue_changed
from specializations.models import SpecializationProgress

DISPATCH_UID = "licenses.sync_license_on_progress_save"
CATALOGUE_DISPATCH_UID = "licenses.follow_catalogue_change"


def sync_license_on_progress_save(sender, instance, created, raw, update_fields, **kwargs):
    """post_save receiver for SpecializationProgress.

    kwargs: ``instance`` (the saved progress), ``created``, ``raw`` (fixture
    loading: left alone), ``update_fields`` (a save that names fields without
    ``current_level`` cannot have moved the level), ``using``.
    """
    if raw or (not created and update_fields is not None and "current_level" not in update_fields):
        return
    from .services import license_follow_progress

    license_follow_progress(instance, created=created)


def follow_catalogue_change(sender, specialization, levels, dry_run, using, **kwargs):
    """catalogue_changed receiver (``specializations.levels``).

    kwargs: ``specialization`` (the SpecializationInfo as it now stands), ``levels``
    (the levels that eased), ``dry_run``, ``using``. Returns the LevelsFollowed.
    """
    from .catalogue_follow import follow_catalogue

    return follow_catalogue(specialization, levels=levels, dry_run=dry_run, using=using)


def connect_receivers() -> None:
    post_save.connect(
        sync_license_on_progress_save, sender=SpecializationProgress, dispatch_uid=DISPATCH_UID
    )
    catalogue_changed.connect(
        follow_catalogue_change, sender=SpecializationInfo, dispatch_uid=CATALOGUE_DISPATCH_UID
    )


def missing_receivers() -> list[str]:
    """The hooks that are not connected, by the signal they listen to."""
    from django.dispatch.dispatcher import _make_id

    hooks = {
        "SpecializationProgress post_save": (
            post_save,
            (DISPATCH_UID, _make_id(SpecializationProgress)),
        ),
        "catalogue_changed": (
            catalogue_changed,
            (CATALOGUE_DISPATCH_UID, _make_id(SpecializationInfo)),
        ),
    }
    return [
        name
        for name, (signal, key) in hooks.items()
        if not any(receiver[0] == key for receiver in signal.receivers)
    ]


def is_connected() -> bool:
    return not missing_receivers()
