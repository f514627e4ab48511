"""The queue's models now belong to the broker app (broker/migrations/0001):
forgotten here in Django's state only; the tables and their rows stay. Their
content types (and so the permissions on them) follow them."""

from django.db import migrations

MOVED = ("queuedtask", "clusterlease", "seenmessage")


def _relabel(apps, schema_editor, source: str, target: str) -> None:
    rows = apps.get_model("contenttypes", "ContentType").objects.using(
        schema_editor.connection.alias
    )
    there = set(rows.filter(app_label=target).values_list("model", flat=True))
    rows.filter(app_label=source, model__in=set(MOVED) - there).update(app_label=target)


def content_types_to_broker(apps, schema_editor):
    _relabel(apps, schema_editor, "processing", "broker")


def content_types_to_processing(apps, schema_editor):
    _relabel(apps, schema_editor, "broker", "processing")


class Migration(migrations.Migration):
    dependencies = [
        ("processing", "0004_seen_message"),
        ("broker", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="ClusterLease"),
                migrations.DeleteModel(name="QueuedTask"),
                migrations.DeleteModel(name="SeenMessage"),
            ]
        ),
        migrations.RunPython(content_types_to_broker, content_types_to_processing),
    ]
