"""The auto-sync hook: the licence follows every saved progress row.

Connected in ``LicensesConfig.ready()``; ``licenses.checks`` reports E001 when
it is not connected.
"""

from django.db.models.signals import post_save

from specializations.models import SpecializationProgress

DISPATCH_UID = "licenses.sync_license_on_progress_save"


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


def connect_receivers() -> None:
    post_save.connect(
        sync_license_on_progress_save, sender=SpecializationProgress, dispatch_uid=DISPATCH_UID
    )


def is_connected() -> bool:
    from django.dispatch.dispatcher import _make_id

    key = (DISPATCH_UID, _make_id(SpecializationProgress))
    return any(receiver[0] == key for receiver in post_save.receivers)
