"""Admin for the sync monitor, registered here and only here.

``runs`` (Health check runs: history, trend, Run check now), ``desync_cases``
(the live Desync cases with repair) and ``trend`` (the inline SVG) define
classes and functions; importing them registers nothing. ``admin.autodiscover()``
(config/urls.py, SimpleAdminConfig) imports this package, which registers both pages.
"""

from django.contrib import admin

from ..models import DesyncCase, HealthCheckRun
from .desync_cases import DesyncCaseAdmin
from .runs import HealthCheckRunAdmin

admin.site.register(HealthCheckRun, HealthCheckRunAdmin)
admin.site.register(DesyncCase, DesyncCaseAdmin)
