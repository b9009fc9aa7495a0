"""How far a hot standby is behind its primary, so that a stale replica is not believed.

A standby answers the check with the data it has replayed. Behind by WAL it
has not replayed (a paused replay, a slow disk, a long conflict), its answer
is as old as its last replayed commit. The reference for "behind" is the
primary's current WAL position when the primary (the ``default`` alias) can be
reached, else what the standby has received; with neither a reachable primary
nor a streaming WAL receiver, the lag cannot be known.

The figure is an upper bound: it counts from the last replayed commit, so a
standby that fell behind right after a long idle spell reads as behind by that
spell (the check then says UNKNOWN rather than risk a stale OK).
"""

from dataclasses import dataclass

from django.db import DatabaseError, connections

from .exceptions import ReplicaLagUnknown

_STANDBY_STATE = """
SELECT pg_is_in_recovery(),
       CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() END,
       pg_wal_lsn_diff(COALESCE(%s::pg_lsn, pg_last_wal_receive_lsn()), pg_last_wal_replay_lsn()),
       EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8,
       (SELECT status FROM pg_stat_wal_receiver)
"""


@dataclass(frozen=True, slots=True)
class ReplicaLag:
    seconds: float
    paused: bool
    compared_with_primary: bool


def _primary_position(primary: str) -> str | None:
    """The primary's current WAL position, or None when it cannot be asked."""
    connection = connections[primary]
    if connection.vendor != "postgresql":
        return None
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn() END"
            )
            (position,) = cursor.fetchone()
    except DatabaseError:
        return None  # unreachable: fall back on what the standby has received
    return None if position is None else str(position)


def replica_lag(using: str, *, primary: str = "default") -> ReplicaLag | None:
    """The lag of ``using`` behind ``primary``; None when ``using`` is not a standby."""
    connection = connections[using]
    if using == primary or connection.vendor != "postgresql":
        return None
    position = _primary_position(primary)
    with connection.cursor() as cursor:
        cursor.execute(_STANDBY_STATE, [position])
        in_recovery, paused, behind_bytes, since_replay, receiver = cursor.fetchone()
    if not in_recovery:
        return None
    if position is None and receiver != "streaming":
        raise ReplicaLagUnknown(using, "it is not streaming and the primary cannot be reached")
    if behind_bytes is None or behind_bytes <= 0:
        seconds = 0.0
    elif since_replay is None:
        raise ReplicaLagUnknown(using, "it has not replayed a transaction yet")
    else:
        seconds = max(0.0, float(since_replay))
    return ReplicaLag(seconds=seconds, paused=bool(paused), compared_with_primary=bool(position))
