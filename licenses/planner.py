"""Transaction-local PostgreSQL settings (``SET LOCAL``): the only module that sets them.

``transaction_settings`` sets them for the current transaction and, when that
transaction is a caller's, puts the caller's values back on the way out.
Its users: the planner settings below and a repair's lock timeout
(``lock_timeout_scope``; the desync guard's bypass is its own, licenses/guard.py).

The planner rule: a planner setting wraps one desync query (``licenses.consistency``'s
SQL) in a transaction of its own, or is put back on the way out of the caller's;
never a rendered page, a request or a session. The users: a check's snapshot
(``monitoring.check_scope``: its one counting query, beside a replica-lag read),
each range of ``consistency.stream_violations``, and the one query that reads a
key-ordered admin list page (``page_scope``).
"""

from contextlib import contextmanager

from django.db import connections, transaction

# PostgreSQL answers the full join fastest as a merge over the two covering
# indexes: both tables read once, in (user, specialization) order, index-only.
# Left alone it picks a hash full join that reads and hashes a whole table first.
# JIT off: with enable_sort off, a query that must still sort (a keyset page)
# gets a huge cost estimate, and PostgreSQL would compile it with LLVM for longer
# than the query runs (BENCHMARKS.md, "What the profile changed", 4).
MERGE_JOIN_PLAN = {"enable_hashjoin": "off", "enable_sort": "off", "jit": "off"}
# A page of a list in (user, specialization) order: the same merge joins, which stop at
# its LIMIT, and no parallel workers, whose start-up costs more than such a page. Left
# alone, PostgreSQL plans "progress rows without a licence" as a parallel hash anti-join
# over both tables, then a sort (it expects almost no rows, so it sees no early stop).
PAGE_PLAN = {**MERGE_JOIN_PLAN, "max_parallel_workers_per_gather": "0"}


def _set_config(cursor, values: dict[str, str]) -> None:
    calls = ", ".join("set_config(%s, %s, true)" for _ in values)
    cursor.execute(f"SELECT {calls}", [item for pair in values.items() for item in pair])


@contextmanager
def transaction_settings(values: dict[str, str], using: str = "default"):
    """``values`` for the current transaction only; call inside ``transaction.atomic()``.

    When that atomic block is nested in a caller's (the same transaction), the
    caller's values are read first and put back on the way out, so the caller
    never inherits them; a block rolled back takes its settings with it.
    Elsewhere than PostgreSQL this does nothing.
    """
    connection = connections[using]
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        previous = None
        if len(connection.atomic_blocks) > 1:  # our block is inside someone else's
            names = list(values)
            cursor.execute("SELECT " + ", ".join("current_setting(%s)" for _ in names), names)
            previous = dict(zip(names, cursor.fetchone(), strict=True))
        _set_config(cursor, values)
        yield
        if previous is not None:
            _set_config(cursor, previous)


# The SQLSTATE of a statement whose lock wait ran past lock_timeout.
LOCK_NOT_AVAILABLE = "55P03"


def lock_timeout_scope(seconds: float, using: str = "default"):
    """The longest any lock wait may take in the current transaction (PostgreSQL counts ms).

    A wait that runs out fails its statement with ``LOCK_NOT_AVAILABLE``.
    """
    return transaction_settings({"lock_timeout": f"{max(1, round(seconds * 1000))}ms"}, using)


@contextmanager
def merge_join_scope(using: str = "default", *, extra: dict[str, str] | None = None):
    """A transaction on PostgreSQL in which the desync queries get the merge-join plan.

    The settings are transaction-local and, when the caller already had a
    transaction, put back on the way out so it never inherits them. Elsewhere
    this does nothing (SQLite's transactions here are BEGIN IMMEDIATE, which
    would block writers for the length of a read).
    """
    if connections[using].vendor != "postgresql":
        yield
        return
    values = {**MERGE_JOIN_PLAN, **(extra or {})}
    with transaction.atomic(using=using), transaction_settings(values, using):
        yield


def page_scope(using: str = "default"):
    """``merge_join_scope`` with ``PAGE_PLAN``, around the one query that reads a page."""
    return merge_join_scope(using, extra=PAGE_PLAN)
