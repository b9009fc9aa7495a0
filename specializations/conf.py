"""The settings specializations reads, with their defaults (common/conf.py)."""

from common.conf import AppSettings, Setting

app_settings = AppSettings(
    # How long another process may keep a cached level catalogue after an edit
    # (this process clears its cache on every change).
    Setting("SYNC_CATALOGUE_CACHE_SECONDS", 300, minimum=0),
)
