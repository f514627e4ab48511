"""A claimed task's holder: the queue worker process running it (broker/orm.py),
so a dead worker's batch is handed out again at once, and never while it lives."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("broker", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="queuedtask",
            name="holder_pid",
            field=models.IntegerField(db_default=0),
        ),
        migrations.AddField(
            model_name="queuedtask",
            name="holder_start",
            field=models.BigIntegerField(db_default=0),
        ),
    ]
