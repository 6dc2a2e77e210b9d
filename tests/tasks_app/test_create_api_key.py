"""`manage.py create_api_key`: the key alone on the last line, and it works."""

from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from tasks_app.models import ApiClient, ApiKey
from tests.api_helpers import assert_error

ROOT = Path(__file__).resolve().parents[2]


def bearer(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def test_manage_py_prints_the_key_alone_on_the_last_line(transactional_db):
    """Run the real command line against the test database."""
    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "TEST_DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "create_api_key", "billing", "--scopes", "send"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    key = result.stdout.rstrip("\n").splitlines()[-1]
    assert key == key.strip() and " " not in key and len(key) > 30

    client = bearer(key)
    assert client.put("/api/v1/recipients/u-1", {"name": "x"}, format="json").status_code == 201
    assert_error(client.get("/api/v1/templates"), 403, "forbidden")
    assert ApiClient.objects.get(name="billing").scopes == ["send"]


def test_default_scopes_are_send_and_manage(db):
    out = StringIO()
    call_command("create_api_key", "ops", stdout=out)
    key = out.getvalue().strip().splitlines()[-1]
    client = bearer(key)
    assert client.get("/api/v1/templates").status_code == 200
    assert client.get("/api/v1/recipients/none").status_code == 404
    assert sorted(ApiClient.objects.get(name="ops").scopes) == ["manage", "send"]


def test_each_run_adds_a_key_and_only_its_hash_is_stored(db):
    keys = []
    for _ in range(2):
        out = StringIO()
        call_command("create_api_key", "ops", "--scopes", "manage", stdout=out)
        keys.append(out.getvalue().strip().splitlines()[-1])
    assert keys[0] != keys[1]
    assert ApiKey.objects.filter(client__name="ops").count() == 2
    stored = list(ApiKey.objects.values_list("key_hash", flat=True))
    assert not set(keys) & set(stored)
    for key in keys:
        assert bearer(key).get("/api/v1/templates").status_code == 200


def test_unknown_scope_is_an_error(db):
    with pytest.raises(CommandError):
        call_command("create_api_key", "ops", "--scopes", "send,admin", stdout=StringIO())
    assert not ApiClient.objects.exists()
