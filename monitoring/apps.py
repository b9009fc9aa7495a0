from django.apps import AppConfig
from django.db.models.signals import post_migrate, pre_migrate
from django.utils.translation import gettext_lazy as _


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = _("Sync monitoring")

    def ready(self) -> None:
        # checks registers monitoring.W001 (no recent sync check); db_views keeps the
        # Desync cases view in step with the schema and the one desync query.
        from . import checks, db_views  # noqa: F401

        pre_migrate.connect(
            db_views.drop_views_before_migrate, sender=self, dispatch_uid="desync-view-drop"
        )
        post_migrate.connect(
            db_views.create_views_after_migrate, sender=self, dispatch_uid="desync-view-create"
        )
