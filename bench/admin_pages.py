"""The admin's list pages at N pairs, as staff open them: time and queries per page.

Import after ``django.setup()``.
"""

import statistics
import time

from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

from licenses.guard import unguarded

from . import data

PAGES = {
    "progress": "/admin/specializations/specializationprogress/",
    "progress, page 50": "/admin/specializations/specializationprogress/?p=50",
    "progress, one specialization": (
        "/admin/specializations/specializationprogress/?specialization__code__exact=COACH"
    ),
    "progress, level mismatch": (
        "/admin/specializations/specializationprogress/?sync=level_mismatch"
    ),
    "progress, in sync": "/admin/specializations/specializationprogress/?sync=ok",
    "progress, search": "/admin/specializations/specializationprogress/?q=bench4242",
    "licences": "/admin/licenses/userlicense/",
    "licence history": "/admin/licenses/licenseprogression/",
    "desync cases": "/admin/monitoring/desynccase/",
    "desync cases, one kind": "/admin/monitoring/desynccase/?kind__exact=missing_license",
    "health check runs": "/admin/monitoring/healthcheckrun/",
}


def admin_pages(n: int, *, admin_url: str, rounds: int = 3) -> dict:
    """Median wall time and query count of each admin list page over ``n`` pairs."""
    with unguarded(), connection.cursor() as cursor:  # its desyncs, on purpose
        data.fill_postgres(cursor, n, data.SCALE)
    data.vacuum_analyze(admin_url)
    staff = get_user_model().objects.create_superuser("bench-staff", password=None)
    client = Client()
    client.force_login(staff)
    pages = {}
    # The benchmark runs with production settings; the test client's host and
    # plain HTTP are allowed here only.
    with override_settings(ALLOWED_HOSTS=["testserver"], SECURE_SSL_REDIRECT=False):
        for name, url in PAGES.items():
            client.get(url)  # warm caches and the page's imports
            times, queries, status = [], set(), None
            for _ in range(rounds):
                with CaptureQueriesContext(connection) as ctx:
                    start = time.perf_counter()
                    response = client.get(url)
                    times.append(time.perf_counter() - start)
                status = response.status_code
                queries.add(len(ctx.captured_queries))
            pages[name] = {
                "url": url,
                "status": status,
                "median_s": round(statistics.median(times), 3),
                "queries": sorted(queries),
            }
    return {"n": n, "pages": pages}
