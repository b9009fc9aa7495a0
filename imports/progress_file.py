"""Reading a file of progress events (CSV with a header, or JSON Lines), line by line.

Each line becomes one staging row or a ``BadLine`` naming its line number and field.
Field rules are the ledger's own (specializations.services): amounts are whole
numbers (negative ones are corrections), the reason one line, the key at most 255
characters, ``occurred_at`` ISO 8601 with a time zone. A line without a key gets
one from the file's content hash and its line number, so the same file imported
twice is a replay.

A line whose every field is plainly valid (digits or JSON numbers, a known code,
printable text) takes a short path of type and string tests; any other line goes
through the ledger's own checks (``_row``), which name what is wrong. Both give the
same row for a good line.
"""

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from pathlib import Path

from specializations.exceptions import ProgressionError
from specializations.services import (
    AMOUNT_LIMIT,
    REASON_MAX_LENGTH,
    require_amount,
    require_idempotency_key,
    require_occurred_at,
    require_reason,
)

AMOUNTS = ("xp", "sessions", "projects", "theory_hours", "practice_hours")
FIELDS = ("student_id", "external_id", "specialization", *AMOUNTS, "reason", "occurred_at", "key")
_INTEGER = re.compile(r"^[+-]?[0-9]+$")
_KEY_MAX_LENGTH = 255  # ProgressEvent.idempotency_key
_ID_DIGITS = 18  # any 18 digits fit a bigint
_LARGEST_ID = 10**_ID_DIGITS

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
            short = self._short_path(at)
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

    def _short_path(self, at: dict[str, int]):
        """A function of (line number, cells) giving the row of a plainly valid line, else None."""
        student, external, code_at = at["student_id"], at["external_id"], at["specialization"]
        amounts_of = itemgetter(*(at[name] for name in AMOUNTS))
        reason_at, when_at, key_at = at["reason"], at["occurred_at"], at["key"]
        active, digest = self.active, self.digest

        def short(number: int, cells: list[str]) -> tuple | None:
            user, outside = cells[student], cells[external]
            if user and not outside:
                if not (user.isdigit() and user.isascii() and len(user) <= _ID_DIGITS):
                    return None
                if not user.lstrip("0"):
                    return None
                outside = None
            elif outside and not user:
                user = None
                self.external_ids = True
            else:
                return None
            code = cells[code_at]
            if code not in active:
                return None
            amounts = amounts_of(cells)
            digits = "".join(amounts)
            if len(digits) <= 9 and digits.isdigit() and digits.isascii():  # below AMOUNT_LIMIT
                amounts = [amount or "0" for amount in amounts]
            else:
                amounts = [_amount(amount) for amount in amounts]
                if None in amounts:
                    return None
                if min(amounts) < 0:
                    self.corrections = True
            reason = cells[reason_at]
            if reason and not _plain(reason, REASON_MAX_LENGTH):
                return None
            when = cells[when_at]
            if when:
                when = _aware(when)
                if when is None:
                    return None
            else:
                when = None
            key = cells[key_at]
            if key:
                if not _plain(key, _KEY_MAX_LENGTH):
                    return None
                self.own_keys = True
            else:
                key = f"{digest}:{number}"
            return (number, user, outside, code, *amounts, reason, when, key)

        return short

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
                yield number, self._short_json(number, record) or record

    def _short_json(self, number: int, record: dict) -> tuple | None:
        """The row of a plainly valid JSON line (numbers as numbers, text as text), else None."""
        user, outside = record.get("student_id"), record.get("external_id")
        if outside is None and type(user) is int and 0 < user < _LARGEST_ID:
            pass
        elif user is None and type(outside) is str and outside:
            self.external_ids = True
        else:
            return None
        code = record.get("specialization")
        if type(code) is not str or code not in self.active:
            return None
        amounts = [record.get(name, 0) for name in AMOUNTS]
        for amount in amounts:
            if type(amount) is not int or not -AMOUNT_LIMIT <= amount <= AMOUNT_LIMIT:
                return None
            if amount < 0:
                self.corrections = True
        reason = record.get("reason", "")
        if type(reason) is not str or (reason and not _plain(reason, REASON_MAX_LENGTH)):
            return None
        when = record.get("occurred_at")
        if when is not None:
            when = _aware(when) if type(when) is str else None
            if when is None:
                return None
        key = record.get("key")
        if key is None:
            key = f"{self.digest}:{number}"
        elif type(key) is str and key and _plain(key, _KEY_MAX_LENGTH):
            self.own_keys = True
        else:
            return None
        return (number, user, outside, code, *amounts, reason, when, key)

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
                amounts.append(require_amount(field, value, allow_negative=True))
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


def _amount(text: str) -> int | None:
    """A cell of plain digits (an optional minus), small enough for any amount; else None."""
    if not text:
        return 0
    digits = text[1:] if text[0] == "-" else text
    if digits.isdigit() and digits.isascii() and len(digits) <= 9:  # below AMOUNT_LIMIT
        return int(text)
    return None


def _plain(text: str, longest: int) -> bool:
    """Text the ledger keeps as it is: printable (no control character or line break),
    no space at either end, not too long."""
    return len(text) <= longest and text.isprintable() and text[0] != " " and text[-1] != " "


def _aware(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo is not None and value.utcoffset() is not None else None


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
