"""The scope the desync check runs in: one snapshot, the merge-join plan, a time limit.

PostgreSQL: ``consistency.merge_join_scope`` with a local ``statement_timeout``.
SQLite: reads in autocommit with a progress handler as the time limit.
"""

import time
from contextlib import contextmanager

from django.db import OperationalError, connections

from licenses.planner import merge_join_scope

from .exceptions import CheckTimedOut

QUERY_CANCELED = "57014"  # PostgreSQL's SQLSTATE for statement_timeout


@contextmanager
def _postgresql(using: str, timeout: float | None):
    extra = {"statement_timeout": str(max(1, round(timeout * 1000)))} if timeout else {}
    try:
        with merge_join_scope(using, extra=extra):
            yield
    except OperationalError as exc:
        if getattr(exc.__cause__, "pgcode", None) == QUERY_CANCELED:
            raise CheckTimedOut(timeout) from exc
        raise


@contextmanager
def _sqlite(connection, timeout: float | None):
    if not timeout:
        yield
        return
    deadline = time.monotonic() + timeout
    connection.ensure_connection()
    raw = connection.connection
    raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
    try:
        yield
    except OperationalError as exc:  # "interrupted"
        if time.monotonic() > deadline:
            raise CheckTimedOut(timeout) from exc
        raise
    finally:
        raw.set_progress_handler(None, 0)


@contextmanager
def check_scope(using: str, *, timeout: float | None):
    connection = connections[using]
    if connection.vendor == "postgresql":
        with _postgresql(using, timeout):
            yield
    elif connection.vendor == "sqlite":
        with _sqlite(connection, timeout):
            yield
    else:
        yield
