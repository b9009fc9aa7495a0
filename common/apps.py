from django.apps import AppConfig


class CommonConfig(AppConfig):
    """App-independent machinery (the big admin lists and their templates); imports no app."""

    name = "common"
    verbose_name = "Common"
