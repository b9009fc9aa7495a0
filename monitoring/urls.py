from django.urls import path

from . import views

app_name = "monitoring"
urlpatterns = [
    path("", views.sync_health, name="sync-health"),
]
