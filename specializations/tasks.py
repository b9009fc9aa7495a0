"""Background jobs of the catalogue: levels following an edit made in the admin.

An edit that eases a level (a lower threshold, a new level) is saved at once;
the students it moves up are moved by ``follow_catalogue_job``, always in the
background (a specialization may hold a million pairs): the admin enqueues it in
the edit's transaction (with the ORM backend its job row commits with the edit),
a worker (``manage.py db_worker``) runs it.
"""

from django.db import transaction
from django.tasks import task

from .catalogue import read_specialization
from .levels import follow_catalogue_change
from .models import Specialization


@task
def follow_catalogue_job(*, specialization: str, levels: list[int]) -> dict:
    """Move up every student of ``specialization`` whose totals reach a higher level now."""
    with transaction.atomic():
        # Waits for a catalogue load or another job on it, then reads what they left.
        Specialization.objects.select_for_update().filter(code=specialization).first()
        info = read_specialization(specialization)
        followed = follow_catalogue_change(info, levels=tuple(levels))
    return {
        "specialization": followed.specialization,
        "moved": {str(level): count for level, count in followed.moved.items()},
        "students": followed.students,
        "out_of_sync": followed.out_of_sync,
    }
