"""One sender process for tests/test_ledger_concurrency.py: ``python -m tests.ledger_sender``.

Sets Django up on its own connection, says ``ready``, waits for ``go`` on stdin
so that every sender calls at the same moment, sends one update_progress and
prints its outcome as one JSON line.
"""

import json
import sys


def main() -> None:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection

    from specializations.services import update_progress

    call = json.loads(sys.argv[1])
    student = get_user_model().objects.get(pk=call.pop("student"))
    specialization = call.pop("specialization")
    connection.ensure_connection()
    print("ready", flush=True)
    sys.stdin.readline()
    try:
        result = update_progress(student, specialization, **call)
        outcome = {"replayed": result.replayed, "event": result.event.pk}
    except Exception as exc:  # reported to the test, which decides
        outcome = {"error": type(exc).__name__, "message": str(exc)}
    print(json.dumps(outcome), flush=True)


if __name__ == "__main__":
    main()
