"""The OpenAPI schema generates without a warning or an error, lists every endpoint of
API.md, and documents the Bearer API keys."""

from __future__ import annotations

from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator

# Endpoints that also document their 401/403 answers.
MANAGEMENT = (
    "/api/v1/templates",
    "/api/v1/recipients/{external_id}",
    "/api/v1/quiet-hours",
    "/api/v1/channel-accounts",
)
PATHS = {
    "/api/v1/templates": {"get", "post"},
    "/api/v1/templates/{code}": {"get", "patch"},
    "/api/v1/templates/{code}/publish": {"post"},
    "/api/v1/templates/{code}/archive": {"post"},
    "/api/v1/templates/{code}/restore": {"post"},
    "/api/v1/templates/{code}/preview": {"post"},
    "/api/v1/recipients/{external_id}": {"get", "put"},
    "/api/v1/quiet-hours": {"get", "post"},
    "/api/v1/quiet-hours/{id}": {"get", "patch", "delete"},
    "/api/v1/channel-accounts": {"get", "post"},
    "/api/v1/channel-accounts/{id}": {"get", "patch", "delete"},
    "/api/v1/channel-accounts/{id}/test": {"post"},
    "/api/v1/messages": {"post"},
    "/api/v1/messages/{task_id}": {"get"},
    "/api/v1/messages/{task_id}/deliveries": {"get"},
    "/api/v1/messages/{task_id}/cancel": {"post"},
    "/api/v1/messages/{task_id}/recall": {"post"},
    "/api/v1/inbox/{external_id}": {"get"},
    "/api/v1/inbox/{external_id}/{delivery_id}/read": {"post"},
    "/api/v1/inbox/{external_id}/read-all": {"post"},
    "/api/v1/recipients/{external_id}/preferences": {"get", "put"},
    "/api/v1/recurring-sends": {"get", "post"},
    "/api/v1/recurring-sends/{id}": {"get", "patch", "delete"},
}


def test_schema_has_no_warnings_or_errors_for_these_views():
    GENERATOR_STATS.reset()
    with GENERATOR_STATS.silence():
        schema = SchemaGenerator().get_schema(request=None, public=True)
    problems = [*GENERATOR_STATS._warn_cache, *GENERATOR_STATS._error_cache]
    assert problems == []
    for path, methods in PATHS.items():
        operations = schema["paths"][path]
        assert methods <= set(operations), path
        for method in methods:
            assert operations[method]["security"] == [{"ApiKeyAuth": []}], (path, method)
            if path.startswith(MANAGEMENT):
                assert {"401", "403"} <= set(operations[method]["responses"]), (path, method)


def test_schema_endpoint_documents_bearer_keys(client, db):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["components"]["securitySchemes"]["ApiKeyAuth"]["scheme"] == "bearer"
    preview = schema["paths"]["/api/v1/templates/{code}/preview"]["post"]
    assert set(preview["responses"]) >= {"200", "400", "404"}
