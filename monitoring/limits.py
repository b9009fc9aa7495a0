"""The bounds of the monitor's numbers, one place for the settings, the command line and the code.

Importable while the settings load (config/settings.py reads it): plain Python only.
"""

import math

SECONDS = (0, math.inf)  # a time limit or an age, 0 or more
RATE = (0, 100)  # a consistency rate or a threshold, in percent
REPAIR_BATCH_SIZE = (1, 10_000)  # pairs per repair transaction
REPAIR_LOCK_TIMEOUT = (0.001, 600)  # seconds; PostgreSQL's lock_timeout counts milliseconds


def within(value, bounds: tuple, *, whole: bool = False) -> bool:
    """``value`` is a finite number (an int when ``whole``; never a bool) inside ``bounds``."""
    kind = int if whole else int | float
    if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value):
        return False
    low, high = bounds
    return low <= value <= high
