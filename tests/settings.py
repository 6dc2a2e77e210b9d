"""Test settings: real PostgreSQL and Redis (override with TEST_DATABASE_URL / TEST_REDIS_URL)."""

import os

os.environ["DATABASE_URL"] = os.environ.get(
    "TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/msgcenter"
)
_redis = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
# Two Redis databases: one for counters/caches, the next for the Celery broker.
_db = int(os.environ.get("TEST_REDIS_DB", "14"))
os.environ["REDIS_URL"] = f"{_redis}/{_db}"
os.environ["CELERY_BROKER_URL"] = f"{_redis}/{_db + 1}"
os.environ.setdefault("MSGCENTER_RETRY_BASE", "0.2")
os.environ.setdefault("MSGCENTER_RETRY_MAX", "1")

from msgcenter.settings import *  # noqa: E402,F401,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
