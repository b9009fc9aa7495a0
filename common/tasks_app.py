"""The task backend's admin section in the reader's language.

django-tasks-db names its app "Tasks Database Backend" (a plain string, not marked for
translation) and ships no Hungarian for the names it does mark (its model's, its
fields'). Listed in INSTALLED_APPS as ``common.tasks_app.BackgroundJobsConfig``
instead of ``django_tasks_db``, it is the same app (label, models, migrations, worker)
under a translatable name; its marked names are marked here again, word for word, so
that ``makemessages`` copies them into common's catalogue, where they are translated.
tests/test_django_strings.py fails when one is no longer the package's own msgid.
"""

from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop
from django_tasks_db.apps import TasksAppConfig


class BackgroundJobsConfig(TasksAppConfig):
    verbose_name = _("Background jobs")


MARKED = (
    "Background jobs",  # ours, above
    gettext_noop("Task Result"),
    gettext_noop("Task Results"),
    gettext_noop("status"),
    gettext_noop("enqueued at"),
    gettext_noop("started at"),
    gettext_noop("finished at"),
    gettext_noop("args kwargs"),
    gettext_noop("priority"),
    gettext_noop("task path"),
    gettext_noop("worker id"),
    gettext_noop("queue name"),
    gettext_noop("backend name"),
    gettext_noop("run after"),
    gettext_noop("return value"),
    gettext_noop("exception class path"),
    gettext_noop("traceback"),
)
