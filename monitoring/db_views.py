"""The database views behind the admin's Desync cases page (``DesyncCase``).

``monitoring_desyncpair`` is exactly ``licenses.consistency.violations_sql()``
with named columns; ``monitoring_desynccase`` adds the admin's key. They are
dropped before every ``migrate`` (SQLite cannot rebuild a table a view reads,
PostgreSQL cannot change a column type a view reads) and recreated from the
current definition after it, so the view never drifts from the one query.
"""

from django.db import connections

from licenses import consistency
from licenses.models import UserLicense
from specializations.models import SpecializationProgress

from .models import DesyncCase

PAIRS_VIEW = "monitoring_desyncpair"
CASES_VIEW = DesyncCase._meta.db_table


def drop_views(*, using: str = "default") -> None:
    with connections[using].cursor() as cursor:
        for view in (CASES_VIEW, PAIRS_VIEW):
            cursor.execute(f"DROP VIEW IF EXISTS {view}")


def create_views(*, using: str = "default") -> bool:
    """(Re)create both views; False when the tables they read do not exist yet."""
    connection = connections[using]
    needed = {SpecializationProgress._meta.db_table, UserLicense._meta.db_table}
    if not needed <= set(connection.introspection.table_names()):
        return False
    sql, params = consistency.violations_sql(using=using)
    assert not params, "the unfiltered violation query takes no parameters"
    drop_views(using=using)
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE VIEW {PAIRS_VIEW}"
            " (user_id, specialization_id, progress_level, license_level, kind)"
            f" AS {sql}"
        )
        cursor.execute(
            f"CREATE VIEW {CASES_VIEW} AS SELECT"
            " CAST(user_id AS VARCHAR(20)) || ':' || specialization_id AS id,"
            f" user_id, specialization_id, progress_level, license_level, kind FROM {PAIRS_VIEW}"
        )
    return True


def drop_views_before_migrate(sender, using="default", **kwargs) -> None:
    """pre_migrate receiver (kwargs: ``using``, ``plan``, ``apps``...)."""
    drop_views(using=using)


def create_views_after_migrate(sender, using="default", **kwargs) -> None:
    """post_migrate receiver (kwargs: ``using``, ``plan``, ``apps``...); also runs after flush."""
    create_views(using=using)
