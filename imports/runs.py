"""An import run's life: queued with its upload, started by a worker, reporting, ended.

The admin records a run as queued (the upload kept in storage until the import has
run: ``IMPORTS_STORAGE``); a worker starts it (``start_run``) and the ``Reporter``
writes how far the import has read, at most once a second, while a heartbeat thread
keeps ``updated_at`` fresh through the long silent steps (the check and the one
transaction that writes). It ends done or failed with what the import reported, or
interrupted (a signal), keeping its upload for Run again. A worker killed outright
leaves it running: its heartbeat stops, and it reads as interrupted after
SYNC_RUN_INTERRUPTED_AFTER_SECONDS (``monitoring.selectors.run_state``), as a repair's does.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from time import monotonic

from django.core.files.storage import storages
from django.db import DatabaseError, connection, connections
from django.utils import timezone

from monitoring import selectors
from monitoring.models import RunState

from .conf import app_settings
from .models import ImportRun

PROGRESS_EVERY = 1.0  # seconds between two progress writes (the run page polls every second)
HEARTBEAT_AT_MOST = 30.0  # seconds between heartbeats, at most (a quarter of the age limit)
FILE_MISSING = (
    "the uploaded file {name!r} is not in the storage this worker reads"
    " (IMPORTS_STORAGE={alias!r}): the web server and the worker must share it"
)
TAKEN_OVER = "taken over by run {run} (Run again)"
UNFINISHED = (RunState.QUEUED, RunState.RUNNING)


class ImportStopped(Exception):
    """The import was asked to stop (a signal, or its run taken over): before it writes."""


# --- The upload, kept in storage until its import has run ---


def import_storage():
    return storages[app_settings.IMPORTS_STORAGE]


def store_upload(upload) -> str:
    """Save an uploaded file under a name of its own; returns the name in storage."""
    storage = import_storage()
    name = storage.get_valid_name(Path(upload.name).name) or "upload"
    return storage.save(f"imports/{uuid.uuid4().hex}/{name}", upload)


def delete_upload(run: ImportRun) -> None:
    """The run's upload is deleted from storage (best effort: a failure leaves it named)."""
    if not run.stored_file:
        return
    storage = import_storage()
    try:
        storage.delete(run.stored_file)
    except OSError:
        return
    with suppress(NotImplementedError, OSError):  # a file system's folder of its own
        Path(storage.path(run.stored_file)).parent.rmdir()
    ImportRun.objects.filter(pk=run.pk).update(stored_file="")
    run.stored_file = ""


@contextmanager
def local_file(name: str) -> Iterator[Path]:
    """The stored upload as a local path: in place on a local file system storage, else a
    temporary copy (removed afterwards). Its name and suffix are the upload's."""
    storage = import_storage()
    if not storage.exists(name):
        raise FileNotFoundError(FILE_MISSING.format(name=name, alias=app_settings.IMPORTS_STORAGE))
    try:
        local = Path(storage.path(name))
    except NotImplementedError:  # a remote storage (S3, ...) has no local path
        local = None
    if local is not None:
        yield local
        return
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / Path(name).name
        with storage.open(name, "rb") as stored, path.open("wb") as copy:
            shutil.copyfileobj(stored, copy, 1 << 20)
        yield path


# --- The run's states ---


def start_run(run: ImportRun) -> bool:
    """A queued run becomes running, here and now, by this process; False if it is not queued."""
    now = timezone.now()
    values = {
        "state": RunState.RUNNING,
        "host": socket.gethostname()[:255],
        "pid": os.getpid(),
        "started_at": now,
        "updated_at": now,
    }
    if not ImportRun.objects.filter(pk=run.pk, state=RunState.QUEUED).update(**values):
        return False
    for name, value in values.items():
        setattr(run, name, value)
    return True


def end_run(run: ImportRun, state: str, reason: str = "", **fields) -> None:
    """Best effort: end an unfinished run, on a fresh connection if the current one broke.

    When even that fails (the database is gone), the run stays running and reads as
    interrupted once its heartbeat is old enough.
    """
    now = timezone.now()
    values = {"state": state, "state_reason": reason, "finished_at": now, "updated_at": now}
    values.update(fields)
    unfinished = ImportRun.objects.filter(pk=run.pk, state__in=UNFINISHED)
    updated = None
    for attempt in range(2):
        try:
            # Inside a caller's transaction, that transaction decides; else a terminated
            # connection is closed, and the next query reconnects.
            if not connection.in_atomic_block and (attempt or not connection.is_usable()):
                connection.close()
            updated = unfinished.update(**values)
            break
        except DatabaseError:
            if connection.in_atomic_block:
                break
    if updated is None:
        return
    if not updated:  # ended meanwhile (taken over by Run again): as it was recorded
        run.refresh_from_db(fields=["state", "state_reason", "finished_at"])
        return
    for name, value in values.items():
        setattr(run, name, value)


def read_state(run: ImportRun) -> str:
    """The state as readers should take it: a silent running run is interrupted."""
    return selectors.run_state(run, now=timezone.now())


# --- While it runs ---


class Reporter:
    """How far an import has read, written to its run, and its heartbeat.

    ``lines`` and ``rows`` are the imports' ``on_progress`` callbacks: each records the
    count, stops the import when ``stop()`` gives a reason (it raises ``ImportStopped``),
    and writes to the run at most every PROGRESS_EVERY seconds, however small the
    batches. Used as a context manager, a thread on a connection of its own writes a
    count the callbacks left unwritten (the last batches before a silent step) and keeps
    refreshing ``updated_at``, so the steps that call nothing back (the check, the write
    transaction) do not read as a dead worker. Its writes are best effort.
    """

    def __init__(self, run: ImportRun, *, stop=None):
        self.run = run
        self.stop = stop
        self.read: dict[str, int] = {}
        self._written_read: dict[str, int] = {}
        self._written = self._beaten = float("-inf")
        self._lock = threading.Lock()  # one write at a time: the newest count wins
        self._done = threading.Event()
        self._thread = None

    def lines(self, count: int) -> None:
        self._record({"lines": count})

    def rows(self, table: str, count: int) -> None:
        self._record({**self.read, table: count})

    def _record(self, read: dict[str, int]) -> None:
        self.read = read
        if self.stop is not None and (why := self.stop()):
            raise ImportStopped(why)
        if monotonic() - self._written >= PROGRESS_EVERY:
            self.flush()

    def flush(self) -> None:
        """Write what was read; raises ``ImportStopped`` when the run is no longer running."""
        if not self._write(with_read=True):
            self.run.refresh_from_db(fields=["state", "state_reason"])
            raise ImportStopped(self.run.state_reason or f"the run is {self.run.state}")

    def _write(self, *, with_read: bool) -> int:
        with self._lock:
            now = monotonic()
            values = {"updated_at": timezone.now()}
            read = self.read
            if with_read:
                values["read"] = read
            updated = ImportRun.objects.filter(pk=self.run.pk, state=RunState.RUNNING).update(
                **values
            )
            self._beaten = now
            if with_read:
                self._written, self._written_read = now, read
            return updated

    def __enter__(self) -> Reporter:
        beat_every = min(HEARTBEAT_AT_MOST, max(1.0, selectors.interrupted_after() / 4))
        self._thread = threading.Thread(
            target=self._beat, args=(beat_every,), name=f"import-run-{self.run.pk}", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._done.set()
        self._thread.join()

    def _beat(self, beat_every: float) -> None:
        try:
            while not self._done.wait(PROGRESS_EVERY):
                now = monotonic()
                unwritten = self.read != self._written_read
                if unwritten and now - self._written >= PROGRESS_EVERY:
                    with suppress(DatabaseError):  # the next turn tries again
                        self._write(with_read=True)
                elif now - self._beaten >= beat_every:
                    with suppress(DatabaseError):
                        self._write(with_read=False)
        finally:
            connections.close_all()  # this thread's own connections
