"""Business actions on templates: create, edit the draft, publish, preview."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F

from msgcenter.errors import APIError, InvalidParams, InvalidRequest
from msgcenter.lifecycle import lock_for_transition

from .models import MessageTemplate, TemplateContent, TemplateStatus, TemplateVersion
from .rendering import RenderError, check_compiles, check_schema, render_content, validate_params

TEMPLATE_FIELDS = (
    "name",
    "category",
    "description",
    "params_schema",
    "sample_params",
    "dedup_window_seconds",
    "daily_cap",
    "remind_after_seconds",
    "remind_channel",
)
CONTENT_FIELDS = ("subject", "body", "body_html", "extra", "account_id", "fallback_channel")


def get_template(code: str) -> MessageTemplate:
    try:
        return MessageTemplate.objects.get(code=code)
    except MessageTemplate.DoesNotExist:
        raise APIError(
            f"Template '{code}' does not exist.",
            code="template_not_found",
            status_code=404,
            details={"template": code},
        )


def _check_schema(schema: Any) -> None:
    problem = check_schema(schema)
    if problem:
        raise InvalidRequest(problem, details={"field": "params_schema"})


def _save_contents(template: MessageTemplate, contents: list[dict[str, Any]]) -> None:
    """Replace the draft contents with `contents` (one per channel+locale)."""
    seen = set()
    for c in contents:
        key = (c["channel"], c.get("locale", "") or "")
        if key in seen:
            raise InvalidRequest(f"Duplicate content for channel '{key[0]}' locale '{key[1]}'.")
        seen.add(key)
    template.contents.all().delete()
    TemplateContent.objects.bulk_create(
        TemplateContent(
            template=template,
            channel=c["channel"],
            locale=c.get("locale", "") or "",
            **{f: c[f] for f in CONTENT_FIELDS if f in c and c[f] is not None},
        )
        for c in contents
    )


def _exists(code: str) -> APIError:
    return APIError(
        f"Template '{code}' already exists.",
        code="conflict",
        status_code=409,
        details={"template": code},
    )


def create_template(
    *, code: str, name: str, contents: list[dict[str, Any]], **fields: Any
) -> MessageTemplate:
    if "params_schema" in fields:
        _check_schema(fields["params_schema"])
    if MessageTemplate.objects.filter(code=code).exists():
        raise _exists(code)
    try:
        with transaction.atomic():
            template = MessageTemplate.objects.create(
                code=code,
                name=name,
                **{k: v for k, v in fields.items() if k in TEMPLATE_FIELDS},
            )
            _save_contents(template, contents)
    except IntegrityError:
        # Lost a race with a concurrent create of the same code.
        if MessageTemplate.objects.filter(code=code).exists():
            raise _exists(code)
        raise
    return template


def update_template(
    *, template: MessageTemplate, contents: list[dict[str, Any]] | None = None, **fields: Any
) -> MessageTemplate:
    """Edit the draft. Published versions are frozen and never change.

    Works on a locked fresh row and saves only the edited fields, so that a stale
    instance never writes back an old status or version."""
    if "params_schema" in fields:
        _check_schema(fields["params_schema"])
    with transaction.atomic():
        template = MessageTemplate.objects.select_for_update().get(pk=template.pk)
        if template.status == TemplateStatus.ARCHIVED:
            raise APIError(
                "An archived template cannot be edited; restore it first.",
                code="invalid_transition",
                status_code=409,
            )
        changed = [key for key in fields if key in TEMPLATE_FIELDS]
        for key in changed:
            setattr(template, key, fields[key])
        template.save(update_fields=[*changed, "updated_at"])
        if contents is not None:
            _save_contents(template, contents)
    return template


def _snapshot(template: MessageTemplate) -> list[dict[str, Any]]:
    return [c.as_snapshot() for c in template.contents.all()]


def template_policies(template: MessageTemplate) -> dict[str, Any]:
    return {
        "dedup_window_seconds": template.dedup_window_seconds,
        "daily_cap": template.daily_cap,
        "remind_after_seconds": template.remind_after_seconds,
        "remind_channel": template.remind_channel,
    }


def publish_template(*, template: MessageTemplate, by: str = "") -> TemplateVersion:
    """Compile every content, then freeze the draft as a new immutable version.

    Publishing a draft identical to the latest version returns that version: a repeated
    click or retried request does not mint a new version number."""
    caller_instance = template
    with transaction.atomic():
        template = lock_for_transition(template, "publish", noun="template", done="published")
        contents = _snapshot(template)
        if not contents:
            raise InvalidRequest("A template needs at least one content to be published.")
        try:
            check_compiles(contents)
        except RenderError as exc:
            raise APIError(
                f"Template does not compile: {exc.message}",
                code="invalid_template",
                details=exc.as_details(),
            )
        frozen = {
            "category": template.category,
            "params_schema": template.params_schema,
            "contents": contents,
            "settings": template_policies(template),
        }
        version = None
        if template.status == TemplateStatus.PUBLISHED and template.version:
            latest = TemplateVersion.objects.get(template=template, version=template.version)
            if all(getattr(latest, key) == value for key, value in frozen.items()):
                version = latest
        if version is None:
            version = TemplateVersion.objects.create(
                template=template, version=(template.version or 0) + 1, published_by=by, **frozen
            )
            template.publish()
            template.version = version.version
            template.save(update_fields=["status", "version", "updated_at"])
    # The caller's instance now shows the published state too.
    caller_instance.refresh_from_db(fields=["status", "version", "updated_at"])
    return version


def archive_template(*, template: MessageTemplate) -> MessageTemplate:
    with transaction.atomic():
        template = lock_for_transition(template, "archive", noun="template", done="archived")
        template.archive()
        template.save(update_fields=["status", "updated_at"])
    return template


def restore_template(*, template: MessageTemplate) -> MessageTemplate:
    """Bring an archived template back as an editable draft (its versions stay)."""
    with transaction.atomic():
        template = lock_for_transition(template, "restore", noun="template", done="restored")
        template.restore()
        template.save(update_fields=["status", "updated_at"])
    return template


def published_version(code: str) -> TemplateVersion:
    """The latest published version of `code`, or the API errors of API.md."""
    # One query on the hot path (every send); the errors are worked out only on a miss.
    version = (
        TemplateVersion.objects.select_related("template")
        .filter(
            template__code=code,
            template__status=TemplateStatus.PUBLISHED,
            version=F("template__version"),
        )
        .first()
    )
    if version is not None:
        return version
    get_template(code)  # 404 template_not_found when there is no such template
    raise APIError(
        f"Template '{code}' has no published version.",
        code="template_not_published",
        status_code=409,
        details={"template": code},
    )


def preview_template(
    *,
    template: MessageTemplate,
    params: dict[str, Any] | None,
    channel: str | None = None,
    locale: str = "",
) -> dict[str, Any]:
    """Render the draft for one channel with `params` (default: the sample params)."""
    params = template.sample_params if params is None else params
    errors = validate_params(template.params_schema or {}, params)
    if errors:
        raise InvalidParams(
            "Params do not match the template's schema.",
            details={"errors": [e.as_dict() for e in errors]},
        )
    contents = list(template.contents.all())
    if not contents:
        raise InvalidRequest("The template has no content to preview.")
    if channel:
        matching = [c for c in contents if c.channel == channel]
        if not matching:
            raise InvalidRequest(
                f"The template has no content for channel '{channel}'.",
                details={"channel": channel},
            )
        exact = [c for c in matching if c.locale == locale]
        content = (exact or [c for c in matching if not c.locale] or matching)[0]
    else:
        content = contents[0]
    try:
        rendered = render_content(content.as_snapshot(), params)
    except RenderError as exc:
        if exc.param_path is not None:
            raise InvalidParams(
                f"The template uses a param the params lack: {exc.message}",
                details={"errors": [{"path": exc.param_path, "message": exc.message}]},
            )
        raise APIError(
            f"Template cannot be rendered: {exc.message}",
            code="invalid_template",
            details=exc.as_details(),
        )
    return {
        "channel": content.channel,
        "subject": rendered["subject"],
        "body": rendered["body"],
        "body_html": rendered["body_html"],
        "extra": rendered["extra"],
    }
