from django.db import migrations


def create_totals(apps, schema_editor):
    apps.get_model("stats", "StatsTotals").objects.get_or_create(pk=1)


class Migration(migrations.Migration):
    dependencies = [("stats", "0001_initial")]
    operations = [migrations.RunPython(create_totals, migrations.RunPython.noop)]
