"""Helpers shared by the provider adapters: raw HTTP calls whose errors live in the
body, JSON decoding, access-token caching and mention helpers.

Not a provider module (the leading underscore keeps `load_all()` from importing it as
one)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from itertools import groupby
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
from django.core.cache import cache

from .base import (
    ConfigError,
    HTTPProvider,
    OutboundMessage,
    SendResult,
    TransportError,
    classify_status,
)

# A token is dropped this long before the provider says it expires (never less than 80%
# of its life is used), so that a request never races the expiry.
TOKEN_EXPIRY_MARGIN = 300
# How long another worker waits for the one that is already fetching a token.
TOKEN_LOCK_SECONDS = 10


def call(provider: HTTPProvider, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """One HTTP request without classifying the status code: many providers answer
    errors as HTTP 200 (or 400) with an error code in the body, which the adapter reads."""
    try:
        return provider.client.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        raise TransportError(f"timeout calling {provider.id}: {exc}") from exc
    except httpx.TransportError as exc:
        raise TransportError(f"connection error calling {provider.id}: {exc}") from exc


def json_body(provider: HTTPProvider, response: httpx.Response) -> Any:
    """The decoded JSON body; a body that is not JSON fails like its status code says
    (a gateway's HTML 502 page is transient, a 404 page permanent)."""
    try:
        return response.json()
    except ValueError:
        verdict = classify_status(response.status_code)
        raise TransportError(
            f"HTTP {response.status_code} from {provider.id}, not JSON: {response.text[:300]}",
            permanent=bool(verdict) if verdict is not None else True,
        ) from None


def with_query(url: str, params: dict[str, Any]) -> str:
    """`url` with `params` added to (or replacing those in) its query string."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query += [(k, str(v)) for k, v in params.items()]
    return urlunsplit(parts._replace(query=urlencode(query)))


def masked_url(url: str) -> str:
    """A webhook URL safe to show: its query string (which holds the access token or
    key) and last path segment (Feishu/Slack hook ids) are masked."""
    parts = urlsplit(url)
    path = parts.path
    if parts.query:
        query = "&".join(f"{k}=***" for k, _ in parse_qsl(parts.query, keep_blank_values=True))
    else:
        query = ""
        head, _, last = path.rstrip("/").rpartition("/")
        if len(last) > 6:
            path = f"{head}/{last[:4]}***"
    return urlunsplit(parts._replace(path=path, query=query))


def base_url(provider: HTTPProvider, default: str) -> str:
    return str(provider.config.get("base_url") or default).rstrip("/")


def mention_values(mentions: list[dict[str, Any]], key: str) -> list[str]:
    """Distinct non-empty values of `key` in the mentions, in order."""
    seen: dict[str, None] = {}
    for mention in mentions:
        value = str(mention.get(key) or "").strip()
        if value:
            seen.setdefault(value, None)
    return list(seen)


class AccessToken:
    """An access token in Django's cache (Redis in production), shared by every worker,
    keyed by a hash of the credentials so that two accounts never share one and a
    changed secret never reuses an old token.

    `fetch()` returns `(token, expires_in_seconds)` and raises TransportError. Only one
    worker fetches at a time: providers such as WeChat invalidate the previous token
    when a new one is issued, so a stampede would make workers revoke each other's."""

    def __init__(
        self, provider_id: str, credentials: tuple[str, ...], fetch: Callable[[], tuple[str, int]]
    ) -> None:
        digest = hashlib.sha256("\x00".join((provider_id, *credentials)).encode()).hexdigest()
        self.key = f"channels:token:{provider_id}:{digest[:32]}"
        self.lock_key = self.key + ":lock"
        self.fetch = fetch

    def get(self) -> str:
        token = cache.get(self.key)
        if token:
            return token
        return self._refresh()

    def invalidate(self, token: str) -> None:
        """Forget `token` after the provider rejected it, unless another worker has
        already replaced it with a fresh one."""
        if cache.get(self.key) == token:
            cache.delete(self.key)

    def _refresh(self) -> str:
        if not cache.add(self.lock_key, 1, timeout=TOKEN_LOCK_SECONDS):
            # Another worker is fetching: wait for its token rather than revoke it.
            deadline = time.monotonic() + TOKEN_LOCK_SECONDS
            while time.monotonic() < deadline:
                time.sleep(0.05)
                token = cache.get(self.key)
                if token:
                    return token
        try:
            token, expires_in = self.fetch()
            if not token:
                raise TransportError("token endpoint returned no token")
            expires_in = int(expires_in or 7200)
            ttl = max(expires_in - TOKEN_EXPIRY_MARGIN, int(expires_in * 0.8), 1)
            cache.set(self.key, token, timeout=ttl)
            return token
        finally:
            cache.delete(self.lock_key)


def require(provider: HTTPProvider, *keys: str) -> list[str]:
    """The values of config keys that must be set, or a ConfigError naming the missing."""
    missing = [key for key in keys if not provider.config.get(key)]
    if missing:
        raise ConfigError(f"{provider.id} account is missing config: {', '.join(missing)}")
    return [str(provider.config[key]) for key in keys]


def with_token(
    token: AccessToken,
    request: Callable[[str], dict[str, Any]],
    is_invalid: Callable[[dict[str, Any]], bool],
) -> dict[str, Any]:
    """Run `request(access_token)`; when the provider says the token is invalid or
    expired (it was revoked, or expired early), fetch a new one and retry exactly once."""
    value = token.get()
    data = request(value)
    if is_invalid(data):
        token.invalidate(value)
        value = token.get()
        data = request(value)
        if is_invalid(data):
            raise TransportError(f"access token rejected right after refresh: {data}")
    return data


def check_callback_token(provider: HTTPProvider, request) -> None:
    """Receipt pushes carry no signature: the callback URL carries `?token=`, compared
    with the account's `callback_token`."""
    expected = str(provider.config.get("callback_token") or "")
    given = request.GET.get("token", "")
    if not expected:
        raise PermissionError(f"{provider.id} account has no callback_token configured")
    if not hmac.compare_digest(expected.encode(), given.encode()):
        raise PermissionError("callback token does not match")


def json_list(request) -> list[dict[str, Any]]:
    """The JSON array of status reports in a callback body (ValueError if it is not)."""
    try:
        data = json.loads(request.body or b"null")
    except ValueError:
        raise ValueError("callback body is not JSON")
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise ValueError("callback body must be a JSON array of status reports")
    return data


class TokenProvider(HTTPProvider):
    """Providers whose API takes an access token fetched with two credentials (WeChat,
    DingTalk and WeCom apps). Subclasses set `default_api`, `credential_keys` and
    implement `_fetch_token() -> (token, expires_in)`."""

    default_api: ClassVar[str] = ""
    credential_keys: ClassVar[tuple[str, str]] = ("", "")
    url_keys = ("base_url",)

    @property
    def api(self) -> str:
        return base_url(self, self.default_api)

    @property
    def token(self) -> AccessToken:
        credentials = require(self, *self.credential_keys)
        return AccessToken(self.id, (self.api, *credentials), self._fetch_token)

    def _fetch_token(self) -> tuple[str, int]:
        raise NotImplementedError


class SameContentBatching(HTTPProvider):
    """Providers whose API sends one content to many recipients per call (DingTalk work
    notices, WeCom app messages, Tencent SMS): messages with identical payloads go out
    together, at most `batch_limit` recipients per call, each recipient's result read
    back from the answer."""

    batch_limit = 100
    no_address_error = "no address"

    def payload(self, message: OutboundMessage) -> dict[str, Any]:
        """The provider-side content of one message (raise TransportError if unusable)."""
        raise NotImplementedError

    def send_same(
        self, payload: dict[str, Any], chunk: list[OutboundMessage]
    ) -> dict[int, SendResult]:
        """Send `payload` to every recipient of `chunk` in one call; a TransportError
        fails the whole chunk."""
        raise NotImplementedError

    def send(self, message: OutboundMessage) -> SendResult:
        result = self.send_batch([message])[0]
        if not result.ok:
            raise TransportError(
                result.error, permanent=result.permanent, retry_after=result.retry_after
            )
        return result

    def send_batch(self, messages: list[OutboundMessage]) -> list[SendResult]:
        results: dict[int, SendResult] = {}
        sendable = []
        for message in messages:
            if not message.address:
                results[message.delivery_id] = SendResult.failure(
                    message.delivery_id, TransportError(self.no_address_error, permanent=True)
                )
                continue
            try:
                sendable.append((json.dumps(self.payload(message), sort_keys=True), message))
            except TransportError as exc:
                results[message.delivery_id] = SendResult.failure(message.delivery_id, exc)
        sendable.sort(key=lambda pair: pair[0])
        for payload_json, group in groupby(sendable, key=lambda pair: pair[0]):
            same = [m for _, m in group]
            for start in range(0, len(same), self.batch_limit):
                chunk = same[start : start + self.batch_limit]
                try:
                    done = self.send_same(json.loads(payload_json), chunk)
                    for result in done.values():
                        self.accepted(result)
                    results.update(done)
                except TransportError as exc:
                    for m in chunk:
                        results[m.delivery_id] = SendResult.failure(m.delivery_id, exc)
        return [results[m.delivery_id] for m in messages]
