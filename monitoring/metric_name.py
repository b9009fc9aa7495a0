"""What a Prometheus metric name may be: one rule for the setting and the exposition.

Prometheus's classic rule, the one prometheus_client's legacy validation reads
(``prometheus_client.validation.METRIC_NAME_RE``; a test keeps the two equal).
Kept here, light and free of Django, because ``config/env.py`` checks
``SYNC_METRICS_PREFIX`` with it before the settings exist, and importing
prometheus_client there would slow every start of check_sync.
"""

import re

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def is_metric_name(value: str) -> bool:
    return METRIC_NAME.fullmatch(value) is not None
