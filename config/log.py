"""Logging helpers for the settings' LOGGING."""

import logging


class RefusalsOnOneLine(logging.Filter):
    """Django's refusals of a request (``django.security.*``: a Host not in
    ALLOWED_HOSTS, a bad session, a suspicious file name) as their one message line.

    Django logs them with the exception attached, so each probe that sends an
    unlisted Host writes a 16-line traceback that says nothing the message does not
    ("Invalid HTTP_HOST header: '10.0.0.5:8000'. You may need to add '10.0.0.5' to
    ALLOWED_HOSTS.").
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("django.security."):
            record.exc_info = None
            record.exc_text = None
        return True
