"""A claim's token on the tasks it took (broker/orm.py): a claim whose answer was
lost (a connection cut after the database ran it) is looked up by it and its
tasks handed out at once, instead of after ``queue.retry``."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("broker", "0003_commitmarker"),
    ]

    operations = [
        migrations.AddField(
            model_name="queuedtask",
            name="claim_token",
            field=models.BigIntegerField(db_default=0),
        ),
    ]
