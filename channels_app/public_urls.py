"""Public endpoints reached by end users' clients (no API key)."""

from django.urls import path

from . import tracking

urlpatterns = [
    path("t/<str:token>", tracking.click, name="click"),
]
