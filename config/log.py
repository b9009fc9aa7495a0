"""Logging helpers for the settings' LOGGING."""

import logging


class OneLineRefusedHosts(logging.Formatter):
    """A request for a Host not in ALLOWED_HOSTS as its one message line.

    Django logs ``DisallowedHost`` with the exception attached, so every probe that
    sends an unlisted Host wrote a 16-line traceback that says nothing the message
    does not ("Invalid HTTP_HOST header: '10.0.0.5:8000'. You may need to add
    '10.0.0.5' to ALLOWED_HOSTS."). Only this handler's text changes: the record
    keeps its exception for any other handler (mail_admins, an error tracker).
    """

    def format(self, record: logging.LogRecord) -> str:
        if record.name == "django.security.DisallowedHost":
            return record.getMessage()
        return super().format(record)
