"""In-app inbox: the delivery row itself is the inbox item, so storing it delivers it."""

from .base import OutboundMessage, Provider, SendResult
from .registry import register


@register
class InAppProvider(Provider):
    id = "inapp"
    channel = "inapp"
    label = "In-app inbox"
    journaled = False
    batch_size = 10000

    def send(self, message: OutboundMessage) -> SendResult:
        return SendResult(message.delivery_id, ok=True, delivered=True)

    def send_batch(self, messages: list[OutboundMessage]) -> list[SendResult]:
        return [SendResult(m.delivery_id, ok=True, delivered=True) for m in messages]

    def test_connection(self) -> str:
        return "in-app inbox: stored in the database"
