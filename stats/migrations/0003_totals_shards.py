"""StatsTotals becomes 64 shard rows (ids 1-64), summed on read, so concurrent
merges never queue on one totals row (stats/store.py)."""

from django.db import migrations

SHARDS = 64


def create_shards(apps, schema_editor):
    totals = apps.get_model("stats", "StatsTotals")
    have = set(totals.objects.values_list("pk", flat=True))
    totals.objects.bulk_create(
        [
            totals(pk=pk, sources_count=0, events_count=0)
            for pk in range(1, SHARDS + 1)
            if pk not in have
        ]
    )


def keep_one(apps, schema_editor):
    from django.db.models import Sum

    totals = apps.get_model("stats", "StatsTotals")
    sums = totals.objects.aggregate(s=Sum("sources_count"), e=Sum("events_count"))
    totals.objects.exclude(pk=1).delete()
    totals.objects.update_or_create(
        pk=1, defaults={"sources_count": sums["s"] or 0, "events_count": sums["e"] or 0}
    )


class Migration(migrations.Migration):
    dependencies = [("stats", "0002_totals_row")]
    operations = [migrations.RunPython(create_shards, keep_one)]
