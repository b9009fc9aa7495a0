"""The short path of import_progress's file reading: lines whose every field is plainly valid.

Plain digits (or JSON numbers) small enough for their column, a code of an active
specialization, printable text without a space at either end, an ISO 8601 time with
a time zone: type and string tests only, no exception raised per line. Any other
line returns None and goes through the ledger's own checks (progress_file's
``_row``), which name what is wrong; both give the same row for a good line. The
file's flags (external ids, keys of its own, corrections) are set as lines are read.
"""

from datetime import datetime
from operator import itemgetter

from specializations.services import AMOUNT_LIMIT, KEY_MAX_LENGTH, REASON_MAX_LENGTH

AMOUNTS = ("xp", "sessions", "projects", "theory_hours", "practice_hours")
_ID_DIGITS = 18  # any 18 digits fit a bigint
_LARGEST_ID = 10**_ID_DIGITS


def csv_rows(file, at: dict[str, int]):
    """A function of (line number, cells) giving the row of a plainly valid CSV line of
    ``file`` (an EventFile; ``at``: each field's cell), else None."""
    student, external, code_at = at["student_id"], at["external_id"], at["specialization"]
    amounts_of = itemgetter(*(at[name] for name in AMOUNTS))
    reason_at, when_at, key_at = at["reason"], at["occurred_at"], at["key"]
    active, digest = file.active, file.digest

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
            file.external_ids = True
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
                file.corrections = True
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
            if not _plain(key, KEY_MAX_LENGTH):
                return None
            file.own_keys = True
        else:
            key = f"{digest}:{number}"
        return (number, user, outside, code, *amounts, reason, when, key)

    return short


def json_row(file, number: int, record: dict) -> tuple | None:
    """The row of a plainly valid JSON line of ``file`` (numbers as numbers, text as
    text), else None."""
    user, outside = record.get("student_id"), record.get("external_id")
    if outside is None and type(user) is int and 0 < user < _LARGEST_ID:
        pass
    elif user is None and type(outside) is str and outside:
        file.external_ids = True
    else:
        return None
    code = record.get("specialization")
    if type(code) is not str or code not in file.active:
        return None
    amounts = [record.get(name, 0) for name in AMOUNTS]
    for amount in amounts:
        if type(amount) is not int or not -AMOUNT_LIMIT <= amount <= AMOUNT_LIMIT:
            return None
        if amount < 0:
            file.corrections = True
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
        key = f"{file.digest}:{number}"
    elif type(key) is str and key and _plain(key, KEY_MAX_LENGTH):
        file.own_keys = True
    else:
        return None
    return (number, user, outside, code, *amounts, reason, when, key)


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
