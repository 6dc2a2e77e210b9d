"""A GIN index on Recipient.tags (PostgreSQL only) for audiences: {"tag": "vip"} is
`tags @> '["vip"]'`. SQLite (the quick start) filters tags in Python instead."""

from django.db import migrations

INDEX = "tasks_app_recipient_tags_gin"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON tasks_app_recipient "
            "USING gin (tags jsonb_path_ops)")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("tasks_app", "0002_read_reminder")]

    operations = [migrations.RunPython(create, drop)]
