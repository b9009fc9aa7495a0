"""The level catalogue of a fresh install (its data: specializations/default_catalogue.py)."""

from django.db import migrations


def load_catalogue(apps, schema_editor):
    from specializations.default_catalogue import install_default_catalogue

    install_default_catalogue(apps=apps, using=schema_editor.connection.alias)


class Migration(migrations.Migration):
    dependencies = [("specializations", "0001_initial")]

    operations = [migrations.RunPython(load_catalogue, migrations.RunPython.noop)]
