"""The sandbox provider: logs the message and counts it as sent. Used for any channel
that has no enabled account, and for accounts flagged `sandbox`."""

import uuid

from .base import OutboundMessage, Provider, SendResult, logger
from .registry import register


@register
class ConsoleProvider(Provider):
    id = "console"
    channel = "*"
    label = "Console sandbox (logs, counts as sent)"
    journaled = False
    batch_size = 1000

    def send(self, message: OutboundMessage) -> SendResult:
        logger.info(
            "console send delivery=%s to=%s subject=%r body=%r",
            message.delivery_id,
            message.address or message.mentions,
            message.subject,
            message.body[:200],
        )
        return SendResult(
            message.delivery_id, ok=True, provider_message_id=f"console-{uuid.uuid4()}"
        )

    def test_connection(self) -> str:
        return "console sandbox: nothing to connect to"
