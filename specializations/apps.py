from django.apps import AppConfig
from django.core.signals import setting_changed
from django.db.models.signals import post_delete, post_migrate, post_save
from django.utils.translation import gettext_lazy as _


class SpecializationsConfig(AppConfig):
    name = "specializations"
    verbose_name = _("Specializations")

    def ready(self) -> None:
        from . import catalogue
        from .models import Level, Specialization

        # The cached catalogue must follow every change to it in this process.
        for model in (Specialization, Level):
            for signal in (post_save, post_delete):
                signal.connect(
                    catalogue.clear_cache,
                    sender=model,
                    dispatch_uid=f"catalogue-clear-{model.__name__}-{signal is post_save}",
                )
        post_migrate.connect(catalogue.clear_cache, dispatch_uid="catalogue-clear-migrate")
        setting_changed.connect(catalogue.clear_cache, dispatch_uid="catalogue-clear-settings")
