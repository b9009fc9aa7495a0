"""The admin log of a staff user's repair: one entry per repaired pair, on its licence."""

from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType

from licenses.models import UserLicense

from .plan import Action, RepairAction


def log_repairs(user, actions: list[RepairAction]) -> None:
    """One admin log entry per repaired pair, on its licence (which exists after repair).

    Runs as repair's ``on_batch``, inside the batch's transaction, so the entries
    commit or roll back with the batch: two queries per batch, whatever its size.
    """
    wanted = {(a.user_id, a.specialization_id): a for a in actions}
    licences = UserLicense.objects.filter(user_id__in={a.user_id for a in actions}).only(
        "pk", "user_id", "specialization_id", "current_level"
    )
    content_type = ContentType.objects.get_for_model(UserLicense)
    LogEntry.objects.bulk_create(
        LogEntry(
            user_id=user.pk,
            content_type=content_type,
            object_id=str(licence.pk),
            object_repr=str(licence)[:200],
            action_flag=CHANGE,
            change_message=(
                f"Repaired desync ({a.kind}): {Action(a.action).label} to level "
                f"{a.target_level} (progress {a.progress_level}, licence {a.license_level})"
            ),
        )
        for licence in licences
        if (a := wanted.get((licence.user_id, licence.specialization_id)))
    )


def logged_as(user):
    """``on_batch`` for ``RepairOptions``: the batch's repairs logged as ``user``'s."""
    return lambda actions: log_repairs(user, actions)
