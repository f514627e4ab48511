"""The queue's tables move here from the processing app: in Django's state only
(SeparateDatabaseAndState). The tables, their rows, indexes and constraints stay
as processing's migrations 0003 and 0004 made them, under their names
(``db_table``); processing's 0005 then forgets the models."""

from django.db import migrations, models

import core.fields


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("processing", "0004_seen_message"),
    ]

    state_operations = [
        migrations.CreateModel(
            name="ClusterLease",
            fields=[
                ("cluster_id", models.CharField(max_length=64, primary_key=True, serialize=False)),
                ("queue", models.CharField(max_length=100)),
                ("host", models.CharField(max_length=255)),
                ("pid", models.IntegerField()),
                ("pid_start", models.BigIntegerField(default=0)),
                ("heartbeat", models.FloatField()),
                ("fresh_since", models.FloatField()),
                ("dead", models.BooleanField(default=False)),
                ("stat", models.TextField(blank=True, default="")),
                ("stat_expires", models.FloatField(default=0)),
            ],
            options={"db_table": "processing_clusterlease"},
        ),
        migrations.CreateModel(
            name="QueuedTask",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("queue", models.CharField(max_length=100)),
                ("payload", models.TextField()),
                ("claimed_until", models.FloatField(default=0)),
                ("owner", models.CharField(blank=True, default="", max_length=64)),
                ("deliveries", models.PositiveIntegerField(default=0)),
            ],
            options={"db_table": "processing_queuedtask", "verbose_name": "queued task"},
        ),
        migrations.CreateModel(
            name="SeenMessage",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("source_id", core.fields.U64Field()),
                ("message_id", models.CharField(max_length=200)),
                ("seen_at", models.FloatField(db_index=True)),
            ],
            options={
                "db_table": "processing_seenmessage",
                "verbose_name": "seen message id",
                "constraints": [
                    models.UniqueConstraint(
                        fields=("source_id", "message_id"), name="processing_seenmessage_uniq"
                    )
                ],
            },
        ),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=state_operations),
    ]
