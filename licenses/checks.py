from django.core import checks

from . import signals


@checks.register()
def auto_sync_receiver_connected(app_configs=None, **kwargs):
    """licenses.E001: without the receiver every progress change desyncs its licence."""
    if signals.is_connected():
        return []
    return [
        checks.Error(
            "The auto-sync receiver is not connected to SpecializationProgress post_save.",
            hint="Call licenses.signals.connect_receivers() (LicensesConfig.ready() does).",
            id="licenses.E001",
        )
    ]
