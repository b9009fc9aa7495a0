"""The error reports' settings filter (DEFAULT_EXCEPTION_REPORTER_FILTER), loaded only when
a debug page or an error report is made."""

import re

from django.views.debug import SafeExceptionReporterFilter


class SafeSettingsFilter(SafeExceptionReporterFilter):
    """Django's error-report filter, also hiding settings that hold a database URL.

    A debug page or an error report lists the settings, hiding those whose name looks
    secret (KEY, SECRET, PASS...). IMPORTS_SOURCE_URL holds the source database's
    password in its URL: its name says SOURCE_URL, so it is hidden as well.
    """

    hidden_settings = re.compile(
        SafeExceptionReporterFilter.hidden_settings.pattern + "|SOURCE_URL", flags=re.I
    )
