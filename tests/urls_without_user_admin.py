"""The project's URLs with an admin site that has no page for the user model, as a
host project may leave it (tests/conftest.py, ``no_user_admin``)."""

from django.contrib import admin
from django.contrib.admin.sites import all_sites
from django.contrib.auth import get_user_model
from django.urls import path

admin.autodiscover()  # the project's registry (SimpleAdminConfig: config/urls.py does it)
site = admin.AdminSite(name="admin")
all_sites.discard(site)  # the system checks are the project site's (tests/test_admin_lists.py)
for model, model_admin in admin.site._registry.items():
    if model is not get_user_model():
        site.register(model, type(model_admin))

urlpatterns = [path("admin/", site.urls)]
