from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Sync monitoring"

    def ready(self) -> None:
        # Registers monitoring.W001 (no recent sync check).
        from . import checks  # noqa: F401
