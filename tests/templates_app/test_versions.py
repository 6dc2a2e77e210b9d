"""Published versions are frozen: editing the draft never changes them."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from msgcenter.errors import APIError
from templates_app.models import TemplateVersion
from templates_app.services import (
    archive_template,
    create_template,
    publish_template,
    published_version,
    update_template,
)


@pytest.fixture
def template(db):
    return create_template(
        code="welcome",
        name="Welcome",
        params_schema={"type": "object", "required": ["name"]},
        contents=[{"channel": "email", "subject": "Hi {{ name }}", "body": "Welcome {{ name }}"}],
    )


def test_publish_freezes_a_snapshot_and_bumps_the_version(template):
    v1 = publish_template(template=template, by="ops")
    assert (v1.version, v1.published_by, v1.category) == (1, "ops", "notification")
    assert v1.params_schema == {"type": "object", "required": ["name"]}
    assert [(c["channel"], c["subject"], c["body"]) for c in v1.contents] == [
        ("email", "Hi {{ name }}", "Welcome {{ name }}")
    ]

    update_template(
        template=template,
        contents=[{"channel": "email", "body": "v2 {{ name }}"}],
        params_schema={"type": "object"},
        category="marketing",
    )
    v2 = publish_template(template=template)
    assert v2.version == 2
    assert v2.contents[0]["body"] == "v2 {{ name }}"
    assert v2.category == "marketing"
    assert published_version("welcome") == v2


def test_editing_the_draft_never_changes_a_published_version(template):
    v1 = publish_template(template=template)
    frozen = TemplateVersion.objects.values().get(pk=v1.pk)
    update_template(
        template=template,
        name="Changed",
        category="alert",
        params_schema={"type": "object", "required": ["x"]},
        daily_cap=1,
        contents=[{"channel": "sms", "body": "changed"}],
    )
    assert TemplateVersion.objects.values().get(pk=v1.pk) == frozen
    template.refresh_from_db()
    assert (template.status, template.version) == ("published", 1)


def test_a_saved_version_refuses_to_be_saved_or_deleted_again(template):
    v1 = publish_template(template=template)
    v1.contents = []
    with pytest.raises(ValidationError):
        v1.save()
    with pytest.raises(ValidationError):
        v1.delete()
    assert TemplateVersion.objects.get(pk=v1.pk).contents != []


def test_published_version_of_a_draft_or_archived_template_is_not_published(template):
    with pytest.raises(APIError) as draft:
        published_version("welcome")
    assert (draft.value.status_code, draft.value.code) == (409, "template_not_published")
    publish_template(template=template)
    archive_template(template=template)
    with pytest.raises(APIError) as archived:
        published_version("welcome")
    assert archived.value.code == "template_not_published"
    with pytest.raises(APIError) as unknown:
        published_version("nope")
    assert (unknown.value.status_code, unknown.value.code) == (404, "template_not_found")
