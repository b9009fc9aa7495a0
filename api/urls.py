from django.urls import path, re_path

from . import views

urlpatterns = [
    path("v1/", views.api.urls),
    # Anything else under /api/ is a 404 problem (ApiDoorMiddleware shapes it).
    re_path(r"^", views.not_found),
]
