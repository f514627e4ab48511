"""On PostgreSQL, a trigram index on the names as the admin searches them
(``UPPER(name) LIKE UPPER('%part%')``): a search for a part of the name among a
million sources reads the index, not the table. Nothing on SQLite."""

from typing import Any

from django.db import migrations

INDEX = "sources_name_trgm_idx"


def forwards(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON sources_source"
        " USING gin (UPPER(name::text) gin_trgm_ops)"
    )


def backwards(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("sources", "0002_name_index")]
    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
