"""The project's URLs plus a django-health-check view, as a user of the extra would add it."""

from django.urls import path
from health_check.views import HealthCheckView

from config.urls import urlpatterns as project_urlpatterns

urlpatterns = [
    *project_urlpatterns,
    path(
        "ht/",
        HealthCheckView.as_view(checks=["monitoring.contrib.health_check.SyncHealth"]),
        name="health_check",
    ),
]
