"""The settings licenses reads, with their defaults (common/conf.py)."""

from common.conf import AppSettings, Setting

app_settings = AppSettings(
    # PostgreSQL refuses a commit that leaves a touched pair out of sync (guard.py).
    Setting("SYNC_DB_GUARD", True),
)
