"""Shared fixtures: API clients with keys, and real servers (SMTP, HTTP, Celery workers)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from tests.servers import HTTPServer, SMTPServer, wait_for

ROOT = Path(__file__).resolve().parent.parent
LOG_DIR = ROOT / "var" / "test-logs"


# --- API -----------------------------------------------------------------------------


def make_key(name: str = "test-service", scopes=("send", "manage")) -> str:
    from tasks_app.services import create_api_key

    return create_api_key(client_name=name, scopes=list(scopes))[1]


@pytest.fixture
def api(db) -> APIClient:
    """An API client authenticated with a key that has both scopes."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_key()}")
    return client


@pytest.fixture
def api_send_only(db) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_key('sender', ['send'])}")
    return client


@pytest.fixture
def anon(db) -> APIClient:
    return APIClient()


# --- Redis ---------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _clean_redis():
    """Each test starts with empty rate-limit / dedup / token state."""
    import redis
    from django.conf import settings

    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    yield


# --- Servers -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def smtp_server_session():
    server = SMTPServer().start()
    yield server
    server.stop()


@pytest.fixture
def smtp_server(smtp_server_session):
    smtp_server_session.reset()
    yield smtp_server_session
    smtp_server_session.reset()


@pytest.fixture
def http_server():
    server = HTTPServer().start()
    yield server
    server.stop()


# --- Celery workers ------------------------------------------------------------------


class Workers:
    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self.procs: dict[str, subprocess.Popen] = {}

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "tests.settings",
                "TEST_DATABASE_URL": self.db_url,
                "PYTHONPATH": str(ROOT),
            }
        )
        return env

    def start(self, name: str, concurrency: int = 2) -> subprocess.Popen:
        from msgcenter.celery import ALL_QUEUES

        LOG_DIR.mkdir(parents=True, exist_ok=True)
        log = open(LOG_DIR / f"worker-{name}.log", "ab")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "msgcenter",
                "worker",
                "-n",
                f"{name}@%h",
                "-Q",
                ",".join(ALL_QUEUES),
                "-c",
                str(concurrency),
                "-l",
                "info",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs[name] = proc
        self.wait_ready(name)
        return proc

    def wait_ready(self, name: str, timeout: float = 60) -> None:
        from msgcenter.celery import app

        def ready():
            if self.procs[name].poll() is not None:
                raise RuntimeError(f"worker {name} exited; see {LOG_DIR}")
            replies = app.control.ping(timeout=0.5) or []
            return any(name in list(r)[0] for r in replies)

        wait_for(ready, timeout=timeout, message=f"worker {name} to answer ping")

    def kill(self, name: str, sig: int = 9) -> None:
        proc = self.procs.pop(name)
        if sig == 9:
            # SIGKILL the whole group: the pool children die with their parent.
            subprocess.run(["pkill", "-9", "-P", str(proc.pid)], check=False)
            proc.kill()
        else:
            proc.terminate()
        proc.wait(timeout=30)

    def stop_all(self) -> None:
        for name in list(self.procs):
            proc = self.procs.pop(name)
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                subprocess.run(["pkill", "-9", "-P", str(proc.pid)], check=False)
                proc.kill()
                proc.wait(timeout=10)


def purge_broker() -> None:
    import redis
    from django.conf import settings

    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()


@pytest.fixture(scope="session")
def celery_workers(django_db_setup, django_db_blocker):
    """Two real Celery worker processes on the Redis broker, against the test database."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    db_url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    purge_broker()
    workers = Workers(db_url)
    workers.start("w1")
    workers.start("w2")
    yield workers
    workers.stop_all()


@pytest.fixture
def workers(celery_workers, transactional_db):
    """Use in tests that need deliveries to really happen. Data is committed."""
    from msgcenter.celery import app

    app.control.purge()
    for name in ("w1", "w2"):
        if name not in celery_workers.procs:
            celery_workers.start(name)
    yield celery_workers
    # Let in-flight work drain before the tables are flushed.
    time.sleep(0.2)
