from django.contrib import admin
from django.urls import include, path

# Here rather than in AdminConfig.ready(): see SimpleAdminConfig in config/settings.py.
admin.autodiscover()

urlpatterns = [
    path("admin/", admin.site.urls),
    path("health/sync/", include("monitoring.urls")),
    path("api/", include("api.urls")),
]
