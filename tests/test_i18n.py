"""Translations: the Simplified Chinese catalog is complete, its committed .mo is what
msgfmt makes of the .po (so `make run` works without gettext), and the console speaks
Chinese when asked."""

from __future__ import annotations

import gettext
import shutil
import subprocess
from pathlib import Path

import pytest
from django.urls import reverse

LOCALE = Path(__file__).resolve().parent.parent / "locale" / "zh_Hans" / "LC_MESSAGES"


def test_the_chinese_catalog_has_no_untranslated_or_fuzzy_entry():
    text = (LOCALE / "django.po").read_text(encoding="utf-8")
    assert "#, fuzzy" not in text
    result = subprocess.run(
        ["msgfmt", "--check", "--statistics", "-o", "/dev/null", str(LOCALE / "django.po")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "untranslated" not in result.stderr and "fuzzy" not in result.stderr
    assert int(result.stderr.split()[0]) > 300


def test_the_committed_mo_is_compiled_from_the_po(tmp_path):
    assert shutil.which("msgfmt"), "gettext's msgfmt is needed (see .ci/run)"
    fresh = tmp_path / "django.mo"
    subprocess.run(["msgfmt", "-o", str(fresh), str(LOCALE / "django.po")], check=True)
    with open(fresh, "rb") as a, open(LOCALE / "django.mo", "rb") as b:
        assert gettext.GNUTranslations(a)._catalog == gettext.GNUTranslations(b)._catalog


def test_the_console_speaks_chinese(admin_client, settings):
    settings.MSGCENTER_DASHBOARD_CACHE_SECONDS = 0
    response = admin_client.post(
        reverse("set_language"), {"language": "zh-hans", "next": reverse("admin:index")}
    )
    assert response.status_code == 302
    page = admin_client.get(reverse("admin:index")).content.decode()
    for label in ("投递看板", "各渠道投递量", "成功率", "当前积压", "消息模板", "渠道账号"):
        assert label in page
    page = admin_client.get(reverse("admin:templates_app_messagetemplate_add")).content.decode()
    assert "参数结构" in page and "使用示例参数预览" in page
    admin_client.post(reverse("set_language"), {"language": "en"})
    assert "Delivery dashboard" in admin_client.get(reverse("admin:index")).content.decode()


@pytest.fixture(autouse=True)
def _db(db):
    """The language switch and the admin need the database."""


def test_every_string_of_ours_is_in_the_catalog(tmp_path):
    """makemessages over a copy of the code finds nothing new to translate."""
    import os
    import sys

    root = LOCALE.parents[2]
    for name in ("msgcenter", "templates_app", "tasks_app", "channels_app", "locale"):
        shutil.copytree(
            root / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    shutil.copy(root / "manage.py", tmp_path / "manage.py")
    env = {
        **os.environ,
        "MSGCENTER_VAR_DIR": str(tmp_path / "var"),
        "DJANGO_SETTINGS_MODULE": "msgcenter.settings",
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "zh_Hans"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    result = subprocess.run(
        [
            "msgfmt",
            "--check",
            "--statistics",
            "-o",
            "/dev/null",
            str(tmp_path / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "untranslated" not in result.stderr and "fuzzy" not in result.stderr, result.stderr
