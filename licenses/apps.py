from django.apps import AppConfig


class LicensesConfig(AppConfig):
    name = "licenses"
    verbose_name = "Licences"

    def ready(self) -> None:
        # The auto-sync hook and the system check that it is wired.
        from . import checks, signals  # noqa: F401

        signals.connect_receivers()
