"""Rendering operator-written templates safely: Jinja2's SandboxedEnvironment with
StrictUndefined (a missing param is an error, not an empty string), autoescape only
for HTML bodies; compiled once per (version, channel, locale, field) and cached."""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import jsonschema
from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import missing

RENDERED_FIELDS = ("subject", "body", "body_html")

# Operator-written templates must not be able to stall a worker with one expression.
MAX_RESULT_BITS = 100_000
MAX_REPEATED_LENGTH = 100_000


class MissingParam(UndefinedError):
    """A variable the template uses is not in the params. Carries where it was looked up
    so that the error can name the param's path (`order.no`)."""

    def __init__(
        self, message: str | None = None, *, obj: Any = missing, name: str | None = None
    ) -> None:
        super().__init__(message)
        self.obj = obj
        self.name = name


class _ParamUndefined(StrictUndefined):
    """StrictUndefined whose error says which param was missing. Sandbox refusals keep
    their own exception (SecurityError)."""

    __slots__ = ()

    def __init__(self, hint=None, obj=missing, name=None, exc=UndefinedError) -> None:
        if exc is UndefinedError:
            exc = functools.partial(MissingParam, obj=obj, name=name)
        super().__init__(hint, obj, name, exc)


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"**", "*"})

    def call_binop(self, context, operator: str, left: Any, right: Any) -> Any:
        if (
            operator == "**"
            and isinstance(left, int)
            and isinstance(right, int)
            and max(abs(left).bit_length(), 1) * right > MAX_RESULT_BITS
        ):
            raise SecurityError("the result of this power is too large")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if (
                    isinstance(seq, str | list | tuple)
                    and isinstance(times, int)
                    and len(seq) * times > MAX_REPEATED_LENGTH
                ):
                    raise SecurityError(
                        f"repeating a sequence beyond {MAX_REPEATED_LENGTH} items is not allowed"
                    )
        return super().call_binop(context, operator, left, right)


_text_env = _Sandbox(undefined=_ParamUndefined, autoescape=False)
_html_env = _Sandbox(undefined=_ParamUndefined, autoescape=True)


class RenderError(Exception):
    """A template that does not compile or cannot render with the given params."""

    def __init__(
        self,
        message: str,
        *,
        channel: str = "",
        field: str = "",
        line: int | None = None,
        param_path: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.channel = channel
        self.field = field
        self.line = line
        # Set when the cause is a param the template uses but the params lack.
        self.param_path = param_path

    def as_details(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "field": self.field,
            "line": self.line,
            "message": self.message,
        }


def _env(field: str):
    return _html_env if field == "body_html" else _text_env


def compile_source(source: str, *, field: str, channel: str = ""):
    try:
        return _env(field).from_string(source)
    except TemplateSyntaxError as exc:
        raise RenderError(
            f"{channel}.{field} line {exc.lineno}: {exc.message}",
            channel=channel,
            field=field,
            line=exc.lineno,
        ) from exc


class _LRU:
    def __init__(self, size: int = 2048) -> None:
        self.size = size
        self.data: OrderedDict = OrderedDict()
        self.lock = threading.Lock()

    def get_or_set(self, key, factory):
        with self.lock:
            if key in self.data:
                self.data.move_to_end(key)
                return self.data[key]
        value = factory()
        with self.lock:
            self.data[key] = value
            if len(self.data) > self.size:
                self.data.popitem(last=False)
        return value


_compiled = _LRU()


def render_content(
    content: dict[str, Any], params: dict[str, Any], *, cache_key: Any = None
) -> dict[str, Any]:
    """Render the subject/body/body_html of one content snapshot with `params`.

    `cache_key` identifies an immutable content (e.g. (version id, channel, locale));
    compiled templates are reused across calls with the same key."""
    channel = content.get("channel", "")
    out: dict[str, Any] = {
        "extra": _render_extra(content.get("extra") or {}, params, channel, cache_key)
    }
    for field in RENDERED_FIELDS:
        source = content.get(field) or ""
        if not source:
            out[field] = ""
            continue
        if "{" not in source:
            out[field] = source
            continue
        if cache_key is None:
            template = compile_source(source, field=field, channel=channel)
        else:
            template = _compiled.get_or_set(
                (cache_key, field),
                lambda s=source, f=field: compile_source(s, field=f, channel=channel),
            )
        out[field] = _render(template, params, channel=channel, field=field)
    return out


def _path_of(target: Any, value: Any, prefix: str = "") -> str | None:
    """The dotted path of the object `target` (by identity) inside the params `value`."""
    if value is target:
        return prefix
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, child in items:
        found = _path_of(target, child, f"{prefix}.{key}" if prefix else str(key))
        if found is not None:
            return found
    return None


def missing_param_path(exc: MissingParam, params: dict[str, Any]) -> str | None:
    """`order.no` for `{{ order.no }}` when params has `order` but not its `no`; None when
    the lookup was not on the params (an attribute of something else)."""
    name = "" if exc.name is None else str(exc.name)
    if exc.obj is missing:
        return name
    parent = _path_of(exc.obj, params)
    if not parent:
        return None
    return f"{parent}.{name}" if name else parent


def _render(template, params: dict[str, Any], *, channel: str, field: str) -> str:
    try:
        return template.render(params)
    except MissingParam as exc:
        raise RenderError(
            f"{channel}.{field}: {exc.message}",
            channel=channel,
            field=field,
            param_path=missing_param_path(exc, params),
        ) from exc
    except UndefinedError as exc:
        raise RenderError(
            f"{channel}.{field}: {exc.message}", channel=channel, field=field
        ) from exc
    except SecurityError as exc:
        raise RenderError(
            f"{channel}.{field}: unsafe template: {exc}", channel=channel, field=field
        ) from exc
    except TemplateError as exc:
        raise RenderError(f"{channel}.{field}: {exc}", channel=channel, field=field) from exc
    except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as exc:
        raise RenderError(f"{channel}.{field}: {exc}", channel=channel, field=field) from exc


def _render_extra(extra: Any, params: dict[str, Any], channel: str, cache_key: Any) -> Any:
    """String values inside `extra` (e.g. WeChat template data, DingTalk buttons) are
    templates too."""
    if isinstance(extra, str):
        if "{" not in extra:
            return extra
        key = None if cache_key is None else (cache_key, "extra", extra)
        template = (
            compile_source(extra, field="extra", channel=channel)
            if key is None
            else _compiled.get_or_set(
                key, lambda: compile_source(extra, field="extra", channel=channel)
            )
        )
        return _render(template, params, channel=channel, field="extra")
    if isinstance(extra, dict):
        return {k: _render_extra(v, params, channel, cache_key) for k, v in extra.items()}
    if isinstance(extra, list):
        return [_render_extra(v, params, channel, cache_key) for v in extra]
    return extra


def check_compiles(contents: list[dict[str, Any]]) -> None:
    """Compile every field of every content; raise RenderError at the first that fails."""
    for content in contents:
        channel = content.get("channel", "")
        for field in RENDERED_FIELDS:
            if content.get(field):
                compile_source(content[field], field=field, channel=channel)
        _check_extra(content.get("extra") or {}, channel)


def _check_extra(extra: Any, channel: str) -> None:
    if isinstance(extra, str) and "{" in extra:
        compile_source(extra, field="extra", channel=channel)
    elif isinstance(extra, dict):
        for v in extra.values():
            _check_extra(v, channel)
    elif isinstance(extra, list):
        for v in extra:
            _check_extra(v, channel)


# --- params ------------------------------------------------------------------------


@dataclass
class ParamsError:
    path: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


_validators: dict[str, Any] = {}


def _validator(schema: dict[str, Any]):
    import json

    key = json.dumps(schema, sort_keys=True)
    validator = _validators.get(key)
    if validator is None:
        cls = jsonschema.validators.validator_for(schema)
        validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
        if len(_validators) > 512:
            _validators.clear()
        _validators[key] = validator
    return validator


def check_schema(schema: Any) -> str | None:
    """None if `schema` is a valid JSON Schema, else a message."""
    if not isinstance(schema, dict):
        return "params_schema must be a JSON object"
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        return f"invalid JSON Schema: {exc.message}"
    return None


def validate_params(schema: dict[str, Any], params: Any) -> list[ParamsError]:
    """Every error of `params` against `schema`, each with its dotted path."""
    if not schema:
        return [] if isinstance(params, dict) else [ParamsError("", "params must be an object")]
    errors = []
    for err in sorted(_validator(schema).iter_errors(params), key=lambda e: list(e.absolute_path)):
        path = ".".join(str(p) for p in err.absolute_path)
        if err.validator == "required" and isinstance(err.instance, dict):
            missing = [r for r in err.validator_value if r not in err.instance]
            for name in missing:
                errors.append(
                    ParamsError(
                        f"{path}.{name}" if path else name, f"'{name}' is a required property"
                    )
                )
            continue
        errors.append(ParamsError(path, err.message))
    return errors
