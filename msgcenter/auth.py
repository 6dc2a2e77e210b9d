"""Bearer API keys (stored hashed), scopes, and the per-client rate limit."""

from django.apps import apps
from django.utils import timezone
from rest_framework import authentication, exceptions, permissions, throttling


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        parts = header.split()
        if len(parts) != 2 or parts[0] != self.keyword:
            raise exceptions.AuthenticationFailed("Use 'Authorization: Bearer <api key>'.")
        ApiKey = apps.get_model("tasks_app", "ApiKey")
        key = (
            ApiKey.objects.select_related("client")
            .filter(key_hash=ApiKey.hash(parts[1]), revoked=False, client__is_active=True)
            .first()
        )
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid API key.")
        now = timezone.now()
        if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        return key.client, key

    def authenticate_header(self, request) -> str:
        return self.keyword


class HasScope(permissions.BasePermission):
    """Views declare `required_scope` ('send' or 'manage'); None means public."""

    def has_permission(self, request, view) -> bool:
        scope = getattr(view, "required_scope", "manage")
        if scope is None:
            return True
        client = request.user
        if client is None or not getattr(client, "is_authenticated", False):
            raise exceptions.NotAuthenticated(
                "Missing API key: send 'Authorization: Bearer <key>'."
            )
        if not client.has_scope(scope):
            raise exceptions.PermissionDenied(f"This API key lacks the '{scope}' scope.")
        return True


class ClientRateThrottle(throttling.SimpleRateThrottle):
    """Fixed-window limit per ApiClient, from ApiClient.rate_limit_per_min."""

    scope = "client"

    def allow_request(self, request, view) -> bool:
        client = request.user
        limit = getattr(client, "rate_limit_per_min", None)
        if not limit:
            return True
        self.rate = f"{limit}/m"
        self.num_requests, self.duration = limit, 60
        return super().allow_request(request, view)

    def get_rate(self):
        return None

    def parse_rate(self, rate):
        return (None, None)

    def get_cache_key(self, request, view) -> str:
        return f"throttle_client_{request.user.pk}"
