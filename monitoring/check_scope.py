"""The scope the desync check runs in: one snapshot, the merge-join plan, a time limit.

PostgreSQL: ``licenses.planner.merge_join_scope`` with a local ``statement_timeout``
(which also bounds waiting for locks), and ``connect_timeout`` for a connection
opened inside the scope, so a server that accepts and never answers cannot
hold the check past its limit. SQLite: reads in autocommit with a progress
handler as the time limit.
"""

import math
import time
from contextlib import ExitStack, contextmanager

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
def connect_within(using: str, timeout: float | None):
    """A PostgreSQL connection opened in this scope gives up after ``timeout`` seconds."""
    connection = connections[using]
    options = connection.settings_dict.setdefault("OPTIONS", {})
    if not timeout or connection.vendor != "postgresql" or "connect_timeout" in options:
        yield
        return
    options["connect_timeout"] = max(2, math.ceil(timeout))  # libpq counts whole seconds, >= 2
    try:
        yield
    finally:
        options.pop("connect_timeout", None)


@contextmanager
def check_scope(using: str, *, timeout: float | None):
    connection = connections[using]
    with ExitStack() as stack:
        # The run is recorded on default; a replica check also asks it for its position.
        for alias in dict.fromkeys([using, "default"]):
            stack.enter_context(connect_within(alias, timeout))
        if connection.vendor == "postgresql":
            stack.enter_context(_postgresql(using, timeout))
        elif connection.vendor == "sqlite":
            stack.enter_context(_sqlite(connection, timeout))
        yield
