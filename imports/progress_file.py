"""Reading a file of progress events (CSV with a header, or JSON Lines), line by line.

Each line becomes one staging row or a ``BadLine`` naming its line number and field.
Field rules are the ledger's own (specializations.services): amounts are whole
numbers (negative ones are corrections), the reason one line, the key at most 255
characters, ``occurred_at`` ISO 8601 with a time zone. A line without a key gets
one from the file's content hash and its line number, so the same file imported
twice is a replay.

A line whose every field is plainly valid takes the short path of
imports/progress_plain.py; any other line goes through the ledger's own checks
(``_row``), which name what is wrong. Both give the same row for a good line.
"""

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from specializations.exceptions import ProgressionError
from specializations.services import (
    require_amount,
    require_idempotency_key,
    require_occurred_at,
    require_reason,
)

from . import progress_plain as plain
from .progress_plain import AMOUNTS

FIELDS = ("student_id", "external_id", "specialization", *AMOUNTS, "reason", "occurred_at", "key")
_INTEGER = re.compile(r"^[+-]?[0-9]+$")

# The staging table of a file's lines (imports/progress_import.py adds the rest).
LINE_COLUMNS = [
    ("line", "big"),
    ("user_id", "big"),
    ("external_id", "text"),
    ("specialization_id", "text"),
    ("xp_gained", "big"),
    ("sessions_completed", "int"),
    ("projects_completed", "int"),
    ("theory_hours", "int"),
    ("practice_hours", "int"),
    ("reason", "text"),
    ("occurred_at", "time"),
    ("idempotency_key", "text"),
]


@dataclass(frozen=True, slots=True)
class BadLine:
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.message}"


class EventFile:
    """A file of events: its format, content hash, and its lines as staging rows.

    While ``rows`` reads, it notes what the checks may skip: whether any line gave an
    external id, a key of its own, or a negative amount.
    """

    def __init__(self, path: str | Path, *, catalogue: dict):
        self.path = Path(path)
        self.catalogue = catalogue
        self.active = {code for code, info in catalogue.items() if info.is_active}
        self.digest = _file_hash(self.path)
        self.format = _format(self.path)
        self.external_ids = self.own_keys = self.corrections = False

    def rows(self, bad: list[BadLine]) -> Iterator[tuple]:
        """Staging rows in file order; each bad line is appended to ``bad`` instead."""
        records = self._jsonl() if self.format == "jsonl" else self._csv(bad)
        for number, record in records:
            if isinstance(record, tuple):  # the short path's row
                yield record
                continue
            if isinstance(record, BadLine):
                bad.append(record)
                continue
            row = self._row(number, record, bad)
            if row is not None:
                yield row

    def _csv(self, bad) -> Iterator[tuple[int, dict | tuple | BadLine]]:
        with self.path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            names = next(reader, None)
            unknown = [name for name in names or () if name not in FIELDS]
            if unknown or not names:
                field = unknown[0] if unknown else "header"
                bad.append(BadLine(1, field, f"is not a column (expected {', '.join(FIELDS)})"))
                return
            width = len(names)
            # A field the header lacks reads the empty cell appended to each row.
            at = {name: width for name in FIELDS} | {name: i for i, name in enumerate(names)}
            short = plain.csv_rows(self, at)
            for cells in reader:
                if not cells:  # a blank line, as csv.DictReader skips it
                    continue
                if len(cells) > width:
                    yield reader.line_num, BadLine(reader.line_num, "line", "has extra cells")
                    continue
                if len(cells) == width:
                    cells.append("")
                    row = short(reader.line_num, cells)
                    if row is not None:
                        yield reader.line_num, row
                        continue
                yield reader.line_num, {k: v for k, v in zip(names, cells, strict=False) if v != ""}

    def _jsonl(self) -> Iterator[tuple[int, dict | tuple | BadLine]]:
        with self.path.open(encoding="utf-8-sig") as handle:
            for number, text in enumerate(handle, start=1):
                if not text.strip():
                    continue
                try:
                    record = json.loads(text)
                except ValueError as exc:
                    yield number, BadLine(number, "line", f"is not JSON ({exc.msg})")
                    continue
                if not isinstance(record, dict):
                    yield number, BadLine(number, "line", "is not a JSON object")
                    continue
                unknown = [name for name in record if name not in FIELDS]
                if unknown:
                    yield number, BadLine(number, unknown[0], "is not a field")
                    continue
                record = {k: v for k, v in record.items() if v is not None}
                yield number, plain.json_row(self, number, record) or record

    def _row(self, number: int, record: dict, bad: list[BadLine]) -> tuple | None:
        problems = len(bad)

        def refuse(field: str, message: str) -> None:
            bad.append(BadLine(number, field, message))

        user_id = external_id = None
        if ("student_id" in record) == ("external_id" in record):
            refuse("student_id", "give either student_id or external_id")
        elif "student_id" in record:
            user_id = _integer(record["student_id"])
            if user_id is None or user_id < 1:
                refuse("student_id", f"{record['student_id']!r} is not a user id")
        else:
            external_id = str(record["external_id"])
            self.external_ids = True
        code = record.get("specialization")
        if code not in self.catalogue:
            refuse("specialization", f"{code!r} is not in the catalogue")
        elif not self.catalogue[code].is_active:
            refuse("specialization", f"{code!r} is inactive")
        amounts = []
        for field in AMOUNTS:
            value = _integer(record.get(field, 0))
            try:
                amounts.append(require_amount(field, value))
            except ProgressionError:
                refuse(field, f"{record.get(field)!r} is not a whole number")
        reason = key = occurred_at = None
        try:
            reason = require_reason(str(record.get("reason", "")))
        except ProgressionError as exc:
            refuse("reason", str(exc))
        if "key" in record:
            self.own_keys = True
        try:
            key = require_idempotency_key(record.get("key", f"{self.digest}:{number}"))
        except ProgressionError as exc:
            refuse("key", str(exc))
        if "occurred_at" in record:
            occurred_at = _when(record["occurred_at"])
            if occurred_at is None:
                refuse(
                    "occurred_at",
                    f"{record['occurred_at']!r} is not an ISO 8601 time with a time zone",
                )
        if len(bad) > problems:
            return None
        if any(amount < 0 for amount in amounts):
            self.corrections = True
        return (number, user_id, external_id, code, *amounts, reason, occurred_at, key)


def _integer(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INTEGER.match(value.strip()):
        return int(value)
    return None


def _when(value) -> datetime | None:
    try:
        return require_occurred_at(datetime.fromisoformat(str(value).strip()))
    except (ValueError, ProgressionError):
        return None


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    with path.open("rb") as handle:
        start = handle.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    return "jsonl" if start.startswith(b"{") else "csv"


def _file_hash(path: Path) -> str:
    """The first 16 hex digits of the file's SHA-256: part of the keys it gets."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(io.DEFAULT_BUFFER_SIZE * 64):
            digest.update(chunk)
    return digest.hexdigest()[:16]
