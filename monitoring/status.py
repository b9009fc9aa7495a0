"""What a check finds: the status names, one place for the health decision and the records.

Importable before Django is set up (``plugin.py``, through ``health.py``): no models here.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Status(models.TextChoices):
    """A check's status (a recorded run's ``status``)."""

    HEALTHY = "healthy", _("Healthy")
    DEGRADED = "degraded", _("Degraded")
    CRITICAL = "critical", _("Critical")


HEALTHY, DEGRADED, CRITICAL = Status.HEALTHY.value, Status.DEGRADED.value, Status.CRITICAL.value
