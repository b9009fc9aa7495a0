"""Long work stopped by a signal (systemd's stop, a kill, Ctrl-C) at its next safe point.

``check_sync --repair`` and the background jobs (a repair, an import) run work that
may take minutes; a signal then ends it at the next point the work asks ``stop()``
(a repair: before its next batch; an import: after its next batch read), and its
run ends interrupted naming the signal.
"""

import signal
import threading
from contextlib import contextmanager

from common.text import Text, gettext_noop

STOPPED_BY = gettext_noop("stopped by %(signal)s")


@contextmanager
def stopped_by_signals(*signals: signal.Signals):
    """Yields ``stop`` (``RepairOptions.stop``, an import's reporter): after one of
    ``signals``, it names the signal.

    A handler that was already installed (db_worker's: finish after this job)
    is still called. Signals reach the main thread only: elsewhere (an immediate
    task backend inside a request) this yields None and installs nothing.
    """
    if not signals or threading.current_thread() is not threading.main_thread():
        yield None
        return
    previous = {sig: signal.getsignal(sig) for sig in signals}
    asked = []

    def handler(signum, frame):
        asked.append(signal.Signals(signum).name)
        chained = previous[signum]
        if callable(chained) and chained is not signal.default_int_handler:
            chained(signum, frame)

    for sig in signals:
        signal.signal(sig, handler)
    try:
        yield lambda: Text(STOPPED_BY, signal=asked[0]) if asked else None
    finally:
        for sig, chained in previous.items():
            signal.signal(sig, chained)
