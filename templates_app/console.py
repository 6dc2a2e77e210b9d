"""What the template pages of the console show besides the form: the live preview of
unsaved contents, diffs between versions and usage counts. Reads only."""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.apps import apps
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import MessageTemplate, TemplateVersion
from .rendering import RenderError, check_schema, render_content, validate_params

_CHANNEL_FIELD = re.compile(r"^(contents(?:-\d+)?)-(\d+)-channel$")
CONTENT_KEYS = ("channel", "locale", "subject", "body", "body_html", "extra")


@dataclass
class PreviewRow:
    title: str
    subject: str = ""
    body: str = ""
    body_html: str = ""
    extra: Any = None
    error: str = ""


@dataclass
class Preview:
    rows: list[PreviewRow] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # about the params, for every row


def _json_field(data, name: str, label: str, errors: list[str]) -> Any:
    raw = (data.get(name) or "").strip()
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError as exc:
        errors.append(_("%(field)s is not valid JSON: %(error)s") % {"field": label, "error": exc})
        return None


def contents_from_form(data) -> list[dict[str, Any]]:
    """The contents as typed in the (unsaved) admin form: every tab's formset rows that
    have a channel and are not marked for deletion."""
    contents = []
    for name in data:
        match = _CHANNEL_FIELD.match(name)
        if not match or not data.get(name):
            continue
        prefix, index = match.groups()
        if int(index) >= int(data.get(f"{prefix}-TOTAL_FORMS") or 0):
            continue
        row = f"{prefix}-{index}"
        if data.get(f"{row}-DELETE"):
            continue
        content = {key: data.get(f"{row}-{key}", "") or "" for key in CONTENT_KEYS}
        try:
            content["extra"] = json.loads(content["extra"]) if content["extra"].strip() else {}
        except ValueError:
            content["extra"] = {"_invalid_json": content["extra"]}
        contents.append(content)
    return sorted(contents, key=lambda c: (c["channel"], c["locale"]))


def sample_recipient(user: Any) -> dict[str, str]:
    """What `recipient` holds when the preview is rendered for the staff user."""
    username = user.get_username() if user is not None else "preview"
    return {
        "external_id": f"staff:{username}",
        "name": (getattr(user, "get_full_name", lambda: "")() or username),
        "email": getattr(user, "email", "") or "",
        "phone": "",
        "locale": "",
    }


def build_preview(
    *,
    contents: list[dict[str, Any]],
    params: Any,
    schema: Any,
    user: Any = None,
    errors: list[str] | None = None,
) -> Preview:
    """Render every content with `params`; problems are reported, never raised."""
    preview = Preview(errors=list(errors or []))
    if schema is not None:
        problem = check_schema(schema)
        if problem:
            preview.errors.append(_("Params schema: %(problem)s") % {"problem": problem})
        elif params is not None:
            for error in validate_params(schema, params):
                detail = error.as_dict()
                preview.errors.append(
                    _("Sample params at '%(path)s': %(message)s")
                    % {"path": detail.get("path") or "/", "message": detail.get("message", "")}
                )
    if params is not None and not isinstance(params, dict):
        preview.errors.append(_("The sample params must be a JSON object."))
        params = None
    for content in contents:
        title = content["channel"] + (f" / {content['locale']}" if content.get("locale") else "")
        row = PreviewRow(title=title)
        if isinstance(content.get("extra"), dict) and "_invalid_json" in content["extra"]:
            row.error = _("Channel specifics are not valid JSON.")
        elif params is None:
            row.error = _("Fix the sample params to see this content rendered.")
        else:
            values = {"recipient": sample_recipient(user), "unsubscribe_url": "", **params}
            try:
                out = render_content(content, values)
            except RenderError as exc:
                row.error = exc.message
            else:
                row.subject, row.body, row.body_html = out["subject"], out["body"], out["body_html"]
                row.extra = out["extra"] or None
        preview.rows.append(row)
    return preview


def preview_from_form(data, *, user: Any = None) -> Preview:
    errors: list[str] = []
    params = _json_field(data, "sample_params", _("Sample params"), errors)
    schema = _json_field(data, "params_schema", _("Params schema"), errors)
    return build_preview(
        contents=contents_from_form(data), params=params, schema=schema, user=user, errors=errors
    )


def preview_stored(template: MessageTemplate, *, user: Any = None) -> Preview:
    contents = [c.as_snapshot() for c in template.contents.all()]
    return build_preview(
        contents=contents,
        params=template.sample_params or {},
        schema=template.params_schema or {},
        user=user,
    )


# --- versions ---------------------------------------------------------------------------


def _lines(snapshot: dict[str, Any]) -> list[str]:
    """A version (or the draft) as stable, readable lines: one block per content."""
    lines = [
        f"category: {snapshot.get('category', '')}",
        "params_schema: "
        + json.dumps(snapshot.get("params_schema") or {}, sort_keys=True, ensure_ascii=False),
        "policies: "
        + json.dumps(snapshot.get("settings") or {}, sort_keys=True, ensure_ascii=False),
    ]
    for content in sorted(
        snapshot.get("contents") or [], key=lambda c: (c.get("channel", ""), c.get("locale", ""))
    ):
        head = content.get("channel", "") + (
            f"/{content['locale']}" if content.get("locale") else ""
        )
        lines.append(f"[{head}]")
        for key in ("subject", "body", "body_html"):
            for i, text in enumerate((content.get(key) or "").splitlines()):
                lines.append(f"  {key}: {text}" if i == 0 else f"  {' ' * len(key)}  {text}")
        for key in ("extra", "account", "fallback_channel"):
            if content.get(key):
                value = content[key]
                lines.append(
                    f"  {key}: "
                    + (
                        json.dumps(value, sort_keys=True, ensure_ascii=False)
                        if isinstance(value, dict | list)
                        else str(value)
                    )
                )
    return lines


def version_snapshot(version: TemplateVersion) -> dict[str, Any]:
    return {
        "category": version.category,
        "params_schema": version.params_schema,
        "contents": version.contents,
        "settings": version.settings,
    }


def draft_snapshot(template: MessageTemplate) -> dict[str, Any]:
    from .services import template_policies

    return {
        "category": template.category,
        "params_schema": template.params_schema,
        "contents": [c.as_snapshot() for c in template.contents.all()],
        "settings": template_policies(template),
    }


def diff_lines(
    old: dict[str, Any] | None, new: dict[str, Any], *, old_name: str, new_name: str
) -> list[tuple[str, str]]:
    """A unified diff as (kind, line) pairs; kind is '+', '-', '@' or ' '."""
    out = []
    for line in difflib.unified_diff(
        _lines(old) if old else [], _lines(new), old_name, new_name, lineterm="", n=2
    ):
        if line.startswith(("---", "+++")):
            continue
        out.append((line[:1] if line[:1] in "+-@" else " ", line))
    return out


def previous_version(version: TemplateVersion) -> TemplateVersion | None:
    return (
        TemplateVersion.objects.filter(template_id=version.template_id, version__lt=version.version)
        .order_by("-version")
        .first()
    )


# --- usage ------------------------------------------------------------------------------

USAGE_PERIODS = (
    ("24h", timedelta(hours=24)),
    ("7d", timedelta(days=7)),
    ("30d", timedelta(days=30)),
)


def usage_counts(template: MessageTemplate) -> dict[str, int]:
    """Tasks created with the template per period, in one indexed range count
    (index on (template, created_at))."""
    task_model = apps.get_model("tasks_app", "MessageTask")
    now = timezone.now()
    return task_model.objects.filter(
        template=template, created_at__gte=now - USAGE_PERIODS[-1][1]
    ).aggregate(
        **{
            name: Count("pk", filter=Q(created_at__gte=now - delta))
            for name, delta in USAGE_PERIODS
        }
    )
