"""The small contract every channel provider implements.

A provider knows its provider's protocol and nothing of tasks or templates: it gets
`OutboundMessage`s (already rendered, address resolved) and returns one `SendResult`
per message. Errors say whether a retry can help (`TransportError.permanent`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

logger = logging.getLogger("msgcenter.channels")


class TransportError(Exception):
    """A failed send. `permanent=False` means a retry (maybe on another account) can help."""

    def __init__(
        self, message: str, *, permanent: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.retry_after = retry_after


class ConfigError(TransportError):
    """The account's config is unusable: permanent until an operator fixes it."""

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True)


@dataclass
class OutboundMessage:
    delivery_id: int
    address: str = ""
    subject: str = ""
    body: str = ""
    body_html: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    # Group channels: the recipients to mention, [{"external_id", "phone", "address"}].
    mentions: list[dict[str, Any]] = field(default_factory=list)
    recipient: dict[str, Any] = field(default_factory=dict)
    task_id: str = ""
    template: str = ""
    category: str = ""
    # Extra transport headers (email: List-Unsubscribe ...).
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class SendResult:
    delivery_id: int
    ok: bool
    provider_message_id: str = ""
    error: str = ""
    permanent: bool = False
    retry_after: float | None = None
    # True when the provider confirms delivery at send time (in-app: stored = delivered).
    delivered: bool = False

    @classmethod
    def failure(cls, delivery_id: int, exc: TransportError) -> SendResult:
        return cls(
            delivery_id,
            ok=False,
            error=exc.message[:2000],
            permanent=exc.permanent,
            retry_after=exc.retry_after,
        )


@dataclass
class CallbackEvent:
    """One status report parsed from a provider callback."""

    provider_message_id: str
    status: str  # "delivered" | "failed" | "read" | "clicked" | "replied" | "bounced" | ...
    error: str = ""
    payload: dict[str, Any] = field(default_factory=dict)


class Provider:
    """Base of every provider adapter. Subclasses set `id`, `channel` and implement
    `send()` (or `send_batch()` where the provider has a batch API)."""

    id: ClassVar[str] = ""
    channel: ClassVar[str] = ""
    # Group providers post once per task into a group (robots, Slack, webhooks).
    group: ClassVar[bool] = False
    # Config keys, and which of them are secrets (write-only, masked in responses).
    config_keys: ClassVar[tuple[str, ...]] = ()
    required_keys: ClassVar[tuple[str, ...]] = ()
    secret_keys: ClassVar[tuple[str, ...]] = ()
    # Keys that, when set, must be http(s) URLs / whole numbers.
    url_keys: ClassVar[tuple[str, ...]] = ()
    integer_keys: ClassVar[tuple[str, ...]] = ()
    label: ClassVar[str] = ""
    # Messages per send_batch() call; the chunk's claim is renewed between calls, so
    # batch_size x worst-case latency must stay well under MSGCENTER_SEND_LEASE.
    batch_size: ClassVar[int] = 20
    # Whether a send has effects outside our database (false: in-app, console), i.e.
    # whether it must be journaled so that a re-claimed chunk does not repeat it.
    journaled: ClassVar[bool] = True

    def __init__(self, config: dict[str, Any] | None = None, *, account_id: int | None = None):
        self.config = dict(config or {})
        self.account_id = account_id
        # Called with each SendResult the moment the provider answered (the send journal).
        self.on_result: Callable[[SendResult], None] | None = None

    def accepted(self, result: SendResult) -> SendResult:
        """Report one result as soon as it is known; implementations call this per
        message so that a worker killed mid-batch leaves a trace of what went out."""
        if self.on_result is not None and result.ok:
            self.on_result(result)
        return result

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> dict[str, str]:
        """Field -> error message for a config that cannot work."""
        errors = {key: "This key is required." for key in cls.required_keys if not config.get(key)}
        for key in cls.url_keys:
            errors.update(url_errors(config, key))
        for key in cls.integer_keys:
            errors.update(integer_errors(config, key))
        return errors

    def send(self, message: OutboundMessage) -> SendResult:
        raise NotImplementedError

    def send_batch(self, messages: list[OutboundMessage]) -> list[SendResult]:
        results = []
        for message in messages:
            try:
                results.append(self.accepted(self.send(message)))
            except TransportError as exc:
                results.append(SendResult.failure(message.delivery_id, exc))
        return results

    def test_connection(self) -> str:
        """Check credentials/reachability without sending; return a short description."""
        return "no check available for this provider"

    def parse_callback(self, request) -> list[CallbackEvent]:
        """Verify a provider callback (raise PermissionError on a bad signature)."""
        raise NotImplementedError(f"{self.id} has no callbacks")

    def close(self) -> None:
        pass


def url_errors(config: dict[str, Any], key: str) -> dict[str, str]:
    """{key: message} when config[key] is set but is not an http(s) URL."""
    value = str(config.get(key) or "")
    if value and urlsplit(value).scheme not in ("http", "https"):
        return {key: "Must be an http(s) URL."}
    return {}


def integer_errors(config: dict[str, Any], key: str) -> dict[str, str]:
    value = config.get(key)
    if value not in (None, "") and not str(value).strip().isdigit():
        return {key: "Must be a number."}
    return {}


def classify_status(status_code: int) -> bool | None:
    """None: success; True: permanent failure; False: transient failure."""
    if 200 <= status_code < 300:
        return None
    if status_code == 429 or status_code >= 500 or status_code == 408:
        return False
    return True


def status_error(response: httpx.Response, label: str) -> TransportError | None:
    """The TransportError an HTTP status means (None for 2xx): 429/408/5xx transient
    (with Retry-After when given), other 4xx permanent."""
    verdict = classify_status(response.status_code)
    if verdict is None:
        return None
    retry_after = None
    if response.status_code == 429:
        try:
            retry_after = float(response.headers.get("Retry-After", ""))
        except ValueError:
            retry_after = None
    return TransportError(
        f"HTTP {response.status_code} from {label}: {response.text[:500]}",
        permanent=verdict,
        retry_after=retry_after,
    )


class HTTPProvider(Provider):
    """Base for providers spoken over HTTP: one pooled client per provider instance,
    explicit timeouts, status codes classified once for all subclasses."""

    default_timeout: ClassVar[float] = 10.0

    def __init__(self, config=None, *, account_id=None):
        super().__init__(config, account_id=account_id)
        self._client: httpx.Client | None = None

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            timeout = float(self.config.get("timeout") or self.default_timeout)
            self._client = httpx.Client(timeout=timeout)
        return self._client

    def request(self, method: str, url: str, **kwargs) -> httpx.Response:
        try:
            response = self.client.request(method, url, **kwargs)
        except httpx.TimeoutException as exc:
            raise TransportError(f"timeout calling {self.id}: {exc}") from exc
        except httpx.TransportError as exc:
            raise TransportError(f"connection error calling {self.id}: {exc}") from exc
        error = status_error(response, self.id)
        if error is not None:
            raise error
        return response

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def mask_config(provider_cls: type[Provider] | None, config: dict[str, Any]) -> dict[str, Any]:
    """The config as shown to humans and API clients: secrets replaced by a mask."""
    secret_keys = set(provider_cls.secret_keys if provider_cls else ())
    secret_keys |= {
        "secret",
        "password",
        "app_secret",
        "corp_secret",
        "auth_token",
        "access_key_secret",
        "secret_key",
        "token",
    }
    masked = {}
    for key, value in (config or {}).items():
        if key in secret_keys and value:
            masked[key] = "********"
        else:
            masked[key] = value
    return masked
