"""The project's URLs with an admin site that has no page for the user model, as a
host project may leave it (tests/conftest.py, ``no_user_admin``)."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.urls import path

site = admin.AdminSite(name="admin")
for model, model_admin in admin.site._registry.items():
    if model is not get_user_model():
        site.register(model, type(model_admin))

urlpatterns = [path("admin/", site.urls)]
