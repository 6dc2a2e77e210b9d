"""The quick start boots: `python -m msgcenter.run --setup` (what `make run` runs) on its
embedded defaults (SQLite and the filesystem broker under a fresh var dir), serves the
admin and the API with the printed credentials, and stops every child on SIGTERM."""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from tasks_app.models import ApiKey, Recipient
from templates_app.models import MessageTemplate, TemplateVersion
from tests.servers import wait_for

ROOT = Path(__file__).resolve().parent.parent
# What the quick start must run without: the test settings put these in os.environ.
SERVICE_VARS = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "REDIS_URL",
    "DJANGO_SETTINGS_MODULE",
    "DEMO_ADMIN_PASSWORD",
    "PORT",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class QuickStart:
    """`python -m msgcenter.run` as a child process, its output collected line by line."""

    def __init__(self, var_dir: Path, port: int, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARS}
        env.update({"MSGCENTER_VAR_DIR": str(var_dir), "PYTHONUNBUFFERED": "1"})
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "msgcenter.run", "--port", str(port), *args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def find(self, pattern: str, timeout: float = 30) -> re.Match:
        def found():
            if self.proc.poll() is not None and not re.search(pattern, self.output, re.M):
                raise AssertionError(f"quick start exited early:\n{self.output[-4000:]}")
            return re.search(pattern, self.output, re.M)

        return wait_for(found, timeout=timeout, interval=0.1, message=repr(pattern))

    def children(self) -> dict[str, int]:
        return {
            name: int(pid)
            for name, pid in re.findall(r"^run\s+\| (\w+) started \(pid (\d+)\)", self.output, re.M)
        }

    def get_ok(self, path: str, timeout: float = 30) -> httpx.Response:
        def answer():
            try:
                response = httpx.get(self.base + path, timeout=5)
            except httpx.TransportError:
                return None
            return response if response.status_code == 200 else None

        self.find(r"^run\s+\| web started", timeout=timeout)
        return wait_for(answer, timeout=timeout, interval=0.2, message=f"200 from {path}")

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            # Never leave a server behind, whatever the test found.
            self.proc.kill()
            for pid in self.children().values():
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


@pytest.fixture(scope="module")
def var_dir(tmp_path_factory) -> Path:
    """One var dir for the boots of this module: the second `--setup` finds the database
    migrated and seeded, as a second `make run` does, and is quicker."""
    return tmp_path_factory.mktemp("quickstart") / "var"


def group_gone(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return True
    return False


def admin_login(browser: httpx.Client, username: str, password: str) -> httpx.Response:
    """Log in through the admin's form, as a browser does (CSRF cookie and token)."""
    page = browser.get("/admin/login/?next=/admin/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    return browser.post(
        "/admin/login/?next=/admin/",
        data={
            "csrfmiddlewaretoken": token,
            "username": username,
            "password": password,
            "next": "/admin/",
        },
    )


@pytest.mark.e2e
def test_quickstart_boots_serves_and_stops(var_dir):
    qs = QuickStart(var_dir, free_port(), "--setup")
    try:
        assert (
            qs.get_ok("/api/schema/")
            .headers["content-type"]
            .startswith("application/vnd.oai.openapi")
        )
        login_page = qs.get_ok("/admin/login/").text
        assert "csrfmiddlewaretoken" in login_page
        # Static files come from whitenoise, with DEBUG off and no collectstatic.
        stylesheet = re.search(r'<link[^>]+href="(/static/[^"]+\.css)"', login_page).group(1)
        css = httpx.get(qs.base + stylesheet, timeout=10)
        assert css.status_code == 200 and "text/css" in css.headers["content-type"]
        login = qs.find(r"^\s+Login:\s+(\S+) / (\S+)$")
        api_key = qs.find(r"^\s+API key:\s+(mc_\S+)$").group(1)
        qs.find(r"^worker \| .* quickstart@\S+ ready\.")
        qs.find(r"^beat\s+\| .*beat: Starting")
        assert set(qs.children()) == {"web", "worker", "beat"}

        # The printed credentials work; a wrong password does not get in.
        with httpx.Client(base_url=qs.base, timeout=10) as browser:
            refused = admin_login(browser, login.group(1), "wrong-password")
            assert refused.status_code == 200 and "errornote" in refused.text
            accepted = admin_login(browser, login.group(1), login.group(2))
            assert accepted.status_code == 302, accepted.text[:500]
            assert accepted.headers["location"] == "/admin/"
            index = browser.get("/admin/")

        # The demo key sends order_shipped to u-1001; the worker on the filesystem broker
        # delivers it to the in-app inbox.
        auth = {"Authorization": f"Bearer {api_key}"}
        sent = httpx.post(
            f"{qs.base}/api/v1/messages",
            headers=auth,
            timeout=10,
            json={
                "template": "order_shipped",
                "recipients": ["u-1001"],
                "params": {"order_no": "A123"},
                "channels": ["inapp"],
            },
        )
        assert sent.status_code == 202, sent.text

        def delivered():
            inbox = httpx.get(f"{qs.base}/api/v1/inbox/u-1001", headers=auth, timeout=10)
            assert inbox.status_code == 200, inbox.text
            return [m for m in inbox.json()["results"] if m["task"] == sent.json()["id"]]

        message = wait_for(delivered, timeout=20, interval=0.3, message="inbox message")[0]
        assert message["subject"] == "Order A123 shipped"
        assert (
            httpx.get(
                f"{qs.base}/api/v1/inbox/u-1001",
                timeout=10,
                headers={"Authorization": "Bearer mc_wrong"},
            ).status_code
            == 401
        )
        # The admin index (dashboard, sidebar) renders for the logged-in admin.
        assert index.status_code == 200 and "/admin/logout/" in index.text, index.text[:500]
    finally:
        code = qs.stop()
        print(qs.output[-8000:])  # shown by pytest when the test fails
    assert code == 0, qs.output[-4000:]
    assert "all processes stopped" in qs.output
    for name, pid in qs.children().items():
        wait_for(lambda pid=pid: group_gone(pid), timeout=5, message=f"{name} to be gone")


@pytest.mark.e2e
def test_quickstart_stops_everything_when_a_child_dies(var_dir):
    qs = QuickStart(var_dir, free_port(), "--setup")
    try:
        qs.get_ok("/admin/login/")
        qs.find(r"^worker \| .* quickstart@\S+ ready\.")
        os.killpg(qs.children()["worker"], signal.SIGKILL)
        code = qs.proc.wait(timeout=30)
    finally:
        qs.stop()
    assert code == 1
    assert re.search(r"stopping \(worker exited with code -9\)", qs.output), qs.output[-3000:]
    for name, pid in qs.children().items():
        wait_for(lambda pid=pid: group_gone(pid), timeout=5, message=f"{name} to be gone")


def seed(settings, tmp_path) -> str:
    settings.VAR_DIR = tmp_path
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def printed(output: str, label: str) -> str:
    return re.search(rf"^\s+{label}:\s+(\S+)", output, re.M).group(1)


def test_seed_demo_is_idempotent(db, settings, tmp_path, monkeypatch):
    monkeypatch.delenv("DEMO_ADMIN_PASSWORD", raising=False)
    first = seed(settings, tmp_path)
    password, key = printed(first, "Password"), printed(first, "API key")
    assert (tmp_path / "demo-credentials.txt").read_text().count(key) == 1

    def state():
        return (
            list(get_user_model().objects.values_list("username", "password", "is_superuser")),
            list(ApiKey.objects.values_list("client__name", "key_hash")),
            list(MessageTemplate.objects.values_list("code", "status", "version", "updated_at")),
            list(TemplateVersion.objects.values_list("template__code", "version")),
            list(
                Recipient.objects.values_list(
                    "external_id", "name", "email", "timezone", "updated_at"
                )
            ),
        )

    before = state()
    assert [t[:3] for t in before[2]] == [
        ("order_shipped", "published", 1),
        ("security_alert", "published", 1),
    ]
    assert [r[:4] for r in before[4]] == [
        ("u-1001", "Li Lei", "lilei@example.com", "Asia/Shanghai"),
        ("u-1002", "Han Meimei", "hanmeimei@example.com", "Asia/Shanghai"),
        ("u-1003", "Jim Green", "jim@example.com", "Europe/London"),
    ]

    second = seed(settings, tmp_path)
    assert state() == before
    assert (printed(second, "Password"), printed(second, "API key")) == (password, key)
    assert get_user_model().objects.get(username="admin").check_password(password)
    assert ApiKey.objects.get(key_hash=ApiKey.hash(key)).client.name == "demo"

    # An explicit DEMO_ADMIN_PASSWORD wins and is remembered.
    monkeypatch.setenv("DEMO_ADMIN_PASSWORD", "another-secret-1")
    assert printed(seed(settings, tmp_path), "Password") == "another-secret-1"
    monkeypatch.delenv("DEMO_ADMIN_PASSWORD")
    assert printed(seed(settings, tmp_path), "Password") == "another-secret-1"
    assert get_user_model().objects.get(username="admin").check_password("another-secret-1")


@pytest.mark.parametrize("lost", ["credentials file", "revoked key"])
def test_seed_demo_makes_a_new_key_when_the_old_one_is_unusable(db, settings, tmp_path, lost):
    key = printed(seed(settings, tmp_path), "API key")
    if lost == "credentials file":
        (tmp_path / "demo-credentials.txt").unlink()
    else:
        ApiKey.objects.filter(key_hash=ApiKey.hash(key)).update(revoked=True)
    output = seed(settings, tmp_path)
    new_key = printed(output, "API key")
    assert new_key != key
    assert ApiKey.objects.filter(key_hash=ApiKey.hash(new_key), revoked=False).exists()
    if lost == "credentials file":
        # The operator's password is not known any more and is left alone.
        assert "unchanged" in output


ENV_READ = re.compile(
    r"""(?:os\.environ(?:\.get)?\(\s*|os\.environ\[|env_(?:bool|int|list)\(\s*)"([A-Z][A-Z0-9_]*)\""""
)


def test_every_environment_variable_is_documented():
    sources = [
        "msgcenter/settings.py",
        "msgcenter/run.py",
        "tests/settings.py",
        "tasks_app/management/commands/seed_demo.py",
    ]
    names = {name for src in sources for name in ENV_READ.findall((ROOT / src).read_text())}
    names.discard("DJANGO_SETTINGS_MODULE")  # Django's own, not a msgcenter setting
    assert {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "PORT"} <= names
    for doc in (".env.example", "README.md", "docs/configuration.md"):
        text = (ROOT / doc).read_text()
        missing = sorted(name for name in names if name not in text)
        assert not missing, (
            f"{doc} does not document {missing}: add each with its default to .env.example, "
            "the table in README.md and docs/configuration.md"
        )
