"""Rendering operator-written templates: params checked against the schema, missing params
named by path, the sandbox holding, HTML escaped only where it is HTML."""

from __future__ import annotations

import time

import pytest

from templates_app.rendering import RenderError, render_content, validate_params
from tests.api_helpers import assert_error

ORDER_SCHEMA = {
    "type": "object",
    "required": ["order", "customer"],
    "properties": {
        "customer": {"type": "string"},
        "order": {
            "type": "object",
            "required": ["no"],
            "properties": {
                "no": {"type": "string"},
                "items": {"type": "array", "items": {"type": "object", "required": ["sku"]}},
            },
        },
    },
}


def make(
    api, body: str, *, schema=None, body_html: str = "", subject: str = "", code: str = "t"
) -> str:
    response = api.post(
        "/api/v1/templates",
        {
            "code": code,
            "name": "T",
            "params_schema": schema or {},
            "contents": [
                {"channel": "email", "subject": subject, "body": body, "body_html": body_html}
            ],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    return f"/api/v1/templates/{code}/preview"


def preview(api, url: str, params):
    return api.post(url, {"params": params, "channel": "email"}, format="json")


# --- params against the schema -----------------------------------------------------------


def test_validate_params_names_nested_paths():
    errors = validate_params(ORDER_SCHEMA, {"order": {"items": [{"sku": "a"}, {}]}})
    assert [e.as_dict() for e in errors] == [
        {"path": "customer", "message": "'customer' is a required property"},
        {"path": "order.no", "message": "'no' is a required property"},
        {"path": "order.items.1.sku", "message": "'sku' is a required property"},
    ]


def test_validate_params_accepts_matching_params():
    assert validate_params(ORDER_SCHEMA, {"customer": "Li", "order": {"no": "A1"}}) == []


def test_missing_nested_param_is_invalid_params_with_its_path(api):
    url = make(api, "Order {{ order.no }} for {{ customer }}", schema=ORDER_SCHEMA)
    error = assert_error(preview(api, url, {"customer": "Li", "order": {}}), 400, "invalid_params")
    assert error["details"]["errors"] == [
        {"path": "order.no", "message": "'no' is a required property"}
    ]


def test_wrong_type_is_invalid_params(api):
    url = make(api, "{{ customer }}", schema=ORDER_SCHEMA)
    error = assert_error(
        preview(api, url, {"customer": ["Li"], "order": {"no": 1}}), 400, "invalid_params"
    )
    assert [e["path"] for e in error["details"]["errors"]] == ["customer", "order.no"]


@pytest.mark.parametrize(
    "body,params,path",
    [
        ("Hello {{ name }}", {}, "name"),
        ("Order {{ order.no }}", {"order": {}}, "order.no"),
        (
            "{% for item in items %}{{ item.qty }}{% endfor %}",
            {"items": [{"sku": "a"}]},
            "items.0.qty",
        ),
    ],
)
def test_a_param_used_but_not_in_the_schema_is_still_named(api, body, params, path):
    """StrictUndefined: a variable the params lack is an error, never an empty string."""
    url = make(api, body)
    error = assert_error(preview(api, url, params), 400, "invalid_params")
    assert [e["path"] for e in error["details"]["errors"]] == [path]


def test_params_must_be_an_object_when_there_is_no_schema():
    assert [e.as_dict() for e in validate_params({}, ["x"])] == [
        {"path": "", "message": "params must be an object"}
    ]


# --- escaping --------------------------------------------------------------------------


def test_html_body_is_escaped_text_body_and_subject_are_not(api):
    url = make(api, "Hi {{ name }}", body_html="<p>Hi {{ name }}</p>", subject="{{ name }}!")
    body = preview(api, url, {"name": "<script>alert('x')</script> & co"}).json()
    assert body["body"] == "Hi <script>alert('x')</script> & co"
    assert body["subject"] == "<script>alert('x')</script> & co!"
    assert body["body_html"] == "<p>Hi &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co</p>"


def test_html_can_opt_out_of_escaping_for_trusted_markup(api):
    url = make(api, "x", body_html="{{ note }} {{ note|safe }}")
    assert preview(api, url, {"note": "<b>"}).json()["body_html"] == "&lt;b&gt; <b>"


# --- the sandbox -----------------------------------------------------------------------

ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ self._TemplateReference__context }}",
    "{{ lipsum.__globals__['os'] }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ request.application.__globals__ }}",
    "{{ config.__class__ }}",
    "{{ ''|attr('__class__') }}",
    "{{ (1).__class__.__base__.__subclasses__() }}",
    "{{ ''.format.__globals__ }}",
    "{{ '{0.__class__}'.format(name) }}",
    "{% set x = name.__class__ %}{{ x }}",
    "{{ name.upper.__self__ }}",
]


@pytest.mark.parametrize("source", ESCAPES)
def test_sandbox_escapes_are_refused_never_a_500(api, source):
    url = make(api, source, body_html=source, subject=source)
    assert api.post(url.replace("preview", "publish")).status_code == 200
    response = preview(api, url, {"name": "Li"})
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] in {"invalid_template", "invalid_params"}
    text = response.content.decode()
    for leak in ("<class", "subclasses", "builtins", "uid=", "__globals__':", "Popen"):
        assert leak not in text


@pytest.mark.parametrize("source", ESCAPES)
def test_render_content_raises_render_error_for_escapes(source):
    with pytest.raises(RenderError):
        render_content({"channel": "email", "body": source}, {"name": "Li"})


@pytest.mark.parametrize(
    "source",
    [
        "{{ 'a' * 1000000000 }}",
        "{{ [0] * 100000000 }}",
        "{{ ((((2 ** 100) ** 100) ** 100) ** 100) ** 100 }}",
        "{{ 9 ** 99999999 }}",
        "{% for i in range(10000000) %}{% endfor %}",
    ],
)
def test_expressions_that_would_stall_a_worker_are_refused(api, source):
    url = make(api, source)
    started = time.monotonic()
    response = preview(api, url, {})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_template"
    assert time.monotonic() - started < 2


def test_render_errors_never_leak_as_500(api):
    url = make(api, "{{ n / 0 }} {{ n.x.y }} {{ items[5] }}")
    for params in ({"n": 1}, {"n": "a", "items": []}):
        assert preview(api, url, params).status_code == 400


def test_extra_strings_are_rendered_too():
    out = render_content(
        {
            "channel": "dingtalk",
            "body": "b",
            "extra": {"title": "Order {{ no }}", "btns": [{"url": "/o/{{ no }}"}], "n": 3},
        },
        {"no": "A1"},
    )
    assert out["extra"] == {"title": "Order A1", "btns": [{"url": "/o/A1"}], "n": 3}
