"""Channel kinds and provider adapters: one file per provider family."""

from .base import (  # noqa: F401
    CallbackEvent,
    ConfigError,
    HTTPProvider,
    OutboundMessage,
    Provider,
    SendResult,
    TransportError,
)
from .registry import (  # noqa: F401
    CHANNELS,
    PROVIDERS,
    get_channel,
    get_provider_class,
    load_all,
    providers_for,
    register,
)
