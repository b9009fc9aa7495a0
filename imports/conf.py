"""The settings imports reads, with their defaults and validation (common/conf.py)."""

from common.conf import AppSettings, Setting

app_settings = AppSettings(
    # The replaced system's database that the admin's "Run source import" reads
    # (postgresql://user:password@host/name; empty: none configured). Only the
    # environment or the settings file sets it, never the browser: it holds a password,
    # which no page, run or job argument shows.
    Setting("IMPORTS_SOURCE_URL", ""),
    # The STORAGES alias that keeps an uploaded file until its import has run. The web
    # server writes it and the worker reads it: where they are different machines,
    # storage both reach (docs/moving-in.md).
    Setting(
        "IMPORTS_STORAGE",
        "default",
        pattern=r"[A-Za-z_][A-Za-z0-9_]*",
        pattern_says="a STORAGES alias",
    ),
)
