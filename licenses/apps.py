from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class LicensesConfig(AppConfig):
    name = "licenses"
    verbose_name = _("Licences")

    def ready(self) -> None:
        # The auto-sync hook and the system checks that it and the commit guard are wired.
        from . import checks, guard, signals  # noqa: F401

        signals.connect_receivers()
        # The commit guard's triggers follow SYNC_DB_GUARD after every migrate.
        post_migrate.connect(
            guard.sync_triggers_after_migrate, sender=self, dispatch_uid="licenses-sync-guard"
        )
