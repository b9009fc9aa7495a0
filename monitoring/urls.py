from django.urls import path

from . import metrics, views

app_name = "monitoring"
urlpatterns = [
    path("", views.sync_health, name="sync-health"),
    path("metrics", metrics.sync_metrics, name="sync-metrics"),
]
