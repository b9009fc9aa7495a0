"""The admin's list pages at N pairs, as staff open them: time and queries per page.

Server time through Django's test client (no network, no gunicorn: ``web.py``
measures that), with production settings except the static files storage (the
manifest needs ``collectstatic``; serving static files is not what is timed).
Import after ``django.setup()``.
"""

import statistics
import time

from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

from licenses.guard import unguarded
from monitoring.services import run_health_check

from . import data
from .data import SPECS

# 1 % out of sync, as in the issue: one pair in 300 per kind, on all three specializations.
ONE_PERCENT = data.Layout(period=300, missing_license=7, missing_progress=107, level_mismatch=207)
PROGRESS = "/admin/specializations/specializationprogress/"
LICENCES = "/admin/licenses/userlicense/"
DESYNCS = "/admin/monitoring/desynccase/"


def pages(n: int) -> dict[str, str]:
    middle = n // 6  # a user id halfway through the pairs (three pairs per user)
    return {
        "progress": PROGRESS,
        "progress, page 50": PROGRESS + "?p=50",
        "progress, one specialization": PROGRESS + "?specialization__code__exact=" + SPECS[1],
        "progress, level 3": PROGRESS + "?level=3",
        "progress, level mismatch": PROGRESS + "?sync=level_mismatch",
        "progress, missing licence": PROGRESS + "?sync=missing_license",
        "progress, in sync": PROGRESS + "?sync=ok",
        "progress, search": PROGRESS + f"?q=bench{middle}",
        "licences": LICENCES,
        "licences, one specialization": LICENCES + "?specialization__code__exact=" + SPECS[0],
        "licences, missing progress": LICENCES + "?sync=missing_progress",
        "licences, in sync": LICENCES + "?sync=ok",
        "licences, search": LICENCES + f"?q=bench{middle}",
        "licence history": "/admin/licenses/licenseprogression/",
        "desync cases": DESYNCS,
        "desync cases, one kind": DESYNCS + "?kind__exact=missing_license",
        "desync cases, one specialization": DESYNCS + "?specialization__code__exact=" + SPECS[1],
        "desync cases, kind and specialization": (
            DESYNCS + "?kind__exact=level_mismatch&specialization__code__exact=" + SPECS[0]
        ),
        "desync cases, halfway (keyset)": DESYNCS + f"?after={middle}:{SPECS[0]}",
        # Users 3, 103, 203... have a case (ONE_PERCENT's slot 7 is their second pair).
        "desync cases, search": DESYNCS + f"?q=bench{middle // 100 * 100 + 3}",
        "health check runs": "/admin/monitoring/healthcheckrun/",
        "specializations": "/admin/specializations/specialization/",
    }


def admin_pages(n: int, *, admin_url: str, rounds: int = 5) -> dict:
    """Median (and spread of) wall time and query count of each admin list page over n pairs."""
    with unguarded(), connection.cursor() as cursor:  # its desyncs, on purpose
        data.fill_postgres(cursor, n, ONE_PERCENT)
    data.vacuum_analyze(admin_url)
    run_health_check()  # cron's latest run: the desync list's counts come from it
    staff = get_user_model().objects.create_superuser("bench-staff", password=None)
    client = Client()
    client.force_login(staff)
    measured = {}
    # The benchmark runs with production settings; the test client's host, plain
    # HTTP and the static files without a manifest are allowed here only.
    storages = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    with override_settings(
        ALLOWED_HOSTS=["testserver"], SECURE_SSL_REDIRECT=False, STORAGES=storages
    ):
        for name, url in pages(n).items():
            client.get(url)  # warm caches and the page's imports
            times, queries, status = [], set(), None
            for _ in range(rounds):
                with CaptureQueriesContext(connection) as ctx:
                    start = time.perf_counter()
                    response = client.get(url)
                    times.append(time.perf_counter() - start)
                status = response.status_code
                queries.add(len(ctx.captured_queries))
            measured[name] = {
                "url": url,
                "status": status,
                "median_s": round(statistics.median(times), 4),
                "min_s": round(min(times), 4),
                "max_s": round(max(times), 4),
                "queries": sorted(queries),
                "rows": _rows(response.content.decode()),
            }
    return {"n": n, "desync_percent": 1, "rounds": rounds, "pages": measured}


def _rows(html: str) -> int:
    """Rows in the page's result table (the test client keeps no context outside tests)."""
    if 'id="result_list"' not in html:
        return 0
    table = html.split('id="result_list"', 1)[1]
    return table.split("<tbody>", 1)[-1].split("</tbody>", 1)[0].count("<tr")


def goals(a: dict) -> list[tuple[str, bool, str]]:
    """Issue 15: desync cases <= 100 ms per page, progress and licence lists <= 50 ms."""
    out = []
    for name, page in a["pages"].items():
        if name.startswith("desync cases"):
            bound = 100
        elif name.startswith(("progress", "licences")):
            bound = 50
        else:
            continue
        ms = page["median_s"] * 1000
        out.append(
            (
                f"admin {name} at {a['n']:,} pairs: <= {bound} ms server time (median)",
                ms <= bound and page["status"] == 200,
                f"{ms:.0f} ms (min {page['min_s'] * 1000:.0f}, max {page['max_s'] * 1000:.0f}),"
                f" HTTP {page['status']}",
            )
        )
    return out
