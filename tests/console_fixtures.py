"""Helpers shared by the console tests."""

from __future__ import annotations

import importlib


def ensure_console_groups() -> None:
    """The staff groups of the data migration. Tests that flush the tables (live
    servers, workers) drop them; then the migration's own function puts them back."""
    from django.apps import apps
    from django.contrib.auth.models import Group

    if Group.objects.filter(name__in=["Operator", "Viewer"]).count() < 2:
        importlib.import_module("channels_app.migrations.0003_console_groups").create_groups(
            apps, None
        )
