"""Assertions on the API's error format: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

from typing import Any


def assert_error(response, status: int, code: str) -> dict[str, Any]:
    """The response is exactly the API.md error body with this status and code."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["error"], body
    error = body["error"]
    assert sorted(error) == ["code", "details", "message"], error
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["details"], dict), error
    return error
