"""Repair's one home, behind ``monitoring.services.repair`` (the only entry point).

- ``options.py``: ``RepairOptions``, how a repair runs (limits, record, hooks).
- ``plan.py``: what repair does to a pair (the lower side moves up) and what it reports.
- ``claim.py``: single flight (the claim), the queue before it, the heartbeat after
  every batch.
- ``loop.py``: the claim, the batches, the retries of skipped pairs, the check after
  and the run's end, whatever stops it.
- ``batch.py``: one batch, one short transaction: lock, re-check, write in bulk, report.
- ``audit.py``: the admin log entries of a staff user's repair, written in each batch.

A signal stops a repair before its next batch through ``common.stop`` (shared with the
imports' background jobs).

Callers (the admin action, the background job, ``check_sync --repair``) call
``services.repair``; the cases a job repairs come from ``monitoring.selectors``.
"""
